"""The logs app through its functions, on generated logs with known anomalies in a real sandbox."""

from __future__ import annotations

import csv
import gzip
import importlib
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from intentos.app import Context
from intentos.errors import AppError, SandboxError
from intentos.executor import Executor
from intentos.function import Effect
from intentos.sandbox import Sandbox
from intentos.skills import kit
from intentos.skills.logs.app import DetectArgs, LabelArgs, LogsApp, ParseArgs, QualityArgs, Window
from intentos.skills.logs.generator import GroundTruth, generate
from intentos.skills.logs.ops import QUICK_ENCODER
from intentos.table import FunctionTable
from intentos.workflow import Workflow

# The small encoder of `--quick`: enough to rank injected anomalies here, light on 2 shared cores.
TINY = QUICK_ENCODER


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """normal.log: no anomalies; test.log: 5% anomalous lines, of every type, with its ground truth."""
    box = Sandbox(tmp_path_factory.mktemp("logs") / "sandbox")
    generate(box.root / "normal.log", kind="service", lines=3000, anomaly_rate=0.0, seed=1)
    # 2 lines/s spreads 3000 lines over 25 minutes, so the failure windows leave known-normal time between them.
    gt = generate(box.root / "test.log", kind="service", lines=3000, anomaly_rate=0.05, seed=7, lines_per_second=2,
                  window_min_s=10)
    assert all(gt.counts[t] >= 30 for t in ("template", "attribute", "contextual")), gt.counts
    return box


@pytest.fixture(scope="module")
def logs(sandbox: Sandbox) -> LogsApp:
    return LogsApp(Context(sandbox=sandbox, settings={"logs": {"encoder": TINY}}))


@pytest.fixture(scope="module")
def truth(sandbox: Sandbox) -> GroundTruth:
    return GroundTruth.load(sandbox.root / "test.log")


def test_the_function_table_lists_the_logs_app_with_its_effects() -> None:
    table = FunctionTable.discover()
    assert table.problems == []
    effects = {f.verb: f.effect for f in table if f.app == "logs"}
    assert effects == {"parse": Effect.WRITE, "detect_anomalies": Effect.READ,
                       "label_from_failure_windows": Effect.WRITE, "check_quality": Effect.READ}
    schema = table.get("logs.label_from_failure_windows").params.model_json_schema()
    assert schema["required"] == ["path", "windows"] and "description" in schema["properties"]["output"]


def test_loading_the_app_does_not_import_the_heavy_libraries() -> None:
    code = ("import sys, intentos.skills.logs.app, intentos.skills.logs.cli; "
            "print(sorted(m for m in ('torch', 'sklearn', 'drain3') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- parse -------------------------------------------------------------------------------------------------


def test_parse_counts_templates(logs: LogsApp) -> None:
    result = logs.parse(ParseArgs(path="test.log", top=5))
    assert (result.format, result.lines, result.records) == ("generic", 3000, 3000)
    assert len(result.top) == 5 < result.templates
    counts = [t.count for t in result.top]
    assert counts == sorted(counts, reverse=True) and counts[0] > 300
    assert any(t.template.startswith("request_id=<*> token verified") for t in result.top)
    assert result.odd.total() == 0 and result.state_file is None
    json.dumps(result.model_dump())  # what the executor journals

    unmasked = logs.parse(ParseArgs(path="test.log", masking=[]))
    assert unmasked.templates > result.templates  # ids and numbers no longer collapse


def test_parser_state_persists_across_calls(logs: LogsApp, sandbox: Sandbox) -> None:
    first = logs.parse(ParseArgs(path="normal.log", state_file="state/parser.json"))
    assert (sandbox.root / "state/parser.json").is_file()
    assert first.new_templates == first.templates and first.state_lines == 3000
    again = logs.parse(ParseArgs(path="normal.log", state_file="state/parser.json"))
    assert again.new_templates == 0 and again.state_lines == 6000
    assert [(t.id, t.template) for t in again.top] == [(t.id, t.template) for t in first.top]
    # The anomalous log brings error templates the state has not seen; the normal ones keep their ids.
    other = logs.parse(ParseArgs(path="test.log", state_file="state/parser.json", top=50))
    assert other.new_templates > 0
    assert {t.template: t.id for t in first.top}.items() & {t.template: t.id for t in other.top}.items()
    with pytest.raises(AppError, match="other parser settings"):
        logs.parse(ParseArgs(path="normal.log", state_file="state/parser.json", masking=["ips"]))


# -- detect ------------------------------------------------------------------------------------------------


def test_a2log_ranks_injected_anomalies_at_the_top(logs: LogsApp, truth: GroundTruth) -> None:
    labels = truth.line_labels()
    result = logs.detect_anomalies(DetectArgs(path="test.log", reference="normal.log", top=20))
    assert result.method == "a2log" and result.train_lines == 3000 and result.scored_lines == 3000
    hits = [line.line in labels for line in result.top[:10]]
    assert sum(hits) >= 8, [(line.line, line.score, line.text[-60:]) for line in result.top]
    scores = [line.score for line in result.top]
    assert scores == sorted(scores, reverse=True) and all(line.over_threshold for line in result.top)
    template_lines = {n for n, t in labels.items() if t.type == "template"}
    flagged_types = {line.type for line in result.top if line.line in template_lines}
    assert flagged_types == {"template"}  # the taxonomy names what kind of anomaly it is
    assert set(result.by_type) == {"template", "attribute", "contextual", "unknown"}
    assert result.by_type["template"] >= 0.9 * len(template_lines)
    assert sum(result.by_type.values()) == result.anomalous


def test_statistics_find_every_type_through_the_executor(logs: LogsApp, truth: GroundTruth, sandbox: Sandbox) -> None:
    labels = truth.line_labels()
    workflow = Workflow.model_validate({"states": [{
        "name": "find", "call": "logs.detect_anomalies",
        "args": {"path": "test.log", "reference": "normal.log", "method": "statistics", "top": 1000},
    }]})
    view = Executor(FunctionTable([LogsApp]), logs.ctx, assume_yes=True).run(workflow)
    assert view.status == "done", view.error
    found = view.results["find"]
    flagged = {line["line"] for line in found["top"] if line["over_threshold"]}
    for kind in ("template", "attribute", "contextual"):
        lines = {n for n, t in labels.items() if t.type == kind}
        assert len(lines & flagged) >= 0.5 * len(lines), kind
    assert len(flagged & set(labels)) >= 0.6 * len(flagged)  # precision floor
    assert found["by_type"]["attribute"] > 0 and found["by_type"]["contextual"] > 0


def test_detect_learns_from_the_first_part_of_the_log(logs: LogsApp, sandbox: Sandbox, truth: GroundTruth) -> None:
    normal = (sandbox.root / "normal.log").read_text()
    (sandbox.root / "both.log").write_text(normal + (sandbox.root / "test.log").read_text())
    result = logs.detect_anomalies(DetectArgs(path="both.log", train_fraction=0.5, method="unseen_template",
                                              top=100))
    assert result.trained_on == "the first 3000 lines of both.log" and result.scored_lines == 3000
    labels = {n + 3000: t for n, t in truth.line_labels().items()}
    flagged = {line.line for line in result.top if line.over_threshold}
    assert len(flagged) == result.anomalous < 100
    assert {n for n, t in labels.items() if t.type == "template"} <= flagged  # every never-seen message type
    assert len(flagged & set(labels)) >= 0.7 * len(flagged)


# -- label from failure windows --------------------------------------------------------------------------------


def test_label_from_failure_windows_writes_per_line_labels(logs: LogsApp, sandbox: Sandbox,
                                                           truth: GroundTruth) -> None:
    labels = truth.line_labels()
    windows = [Window(start=datetime.fromtimestamp(w.start, UTC), end=datetime.fromtimestamp(w.end, UTC))
               for w in truth.windows]
    result = logs.label_from_failure_windows(LabelArgs(path="test.log", windows=windows, output="out/labels.csv"))
    assert result.output == "out/labels.csv" and result.lines == 3000
    with (sandbox.root / "out/labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["line"]) for r in rows] == list(range(1, 3001))
    flagged = {int(r["line"]) for r in rows if r["anomalous"] == "1"}
    assert all(r["in_window"] == "1" for r in rows if r["anomalous"] == "1")
    assert len(flagged) == result.anomalous <= sum(w.anomalous for w in result.windows)  # windows may overlap
    template_lines = {n for n, t in labels.items() if t.type == "template"}
    assert len(flagged & template_lines) >= 0.6 * len(template_lines)
    # Precision floor; naive labelling (everything inside a window) would be right on about 6% of its lines.
    assert len(flagged & set(labels)) >= 0.6 * len(flagged)
    assert all(line.line in flagged for w in result.windows for line in w.top)

    with pytest.raises(AppError, match="already exists"):
        logs.label_from_failure_windows(LabelArgs(path="test.log", windows=windows, output="out/labels.csv"))
    with pytest.raises(AppError, match="no line has a timestamp"):
        (sandbox.root / "plain.log").write_text("no time here\nnor here\n")
        logs.label_from_failure_windows(LabelArgs(path="plain.log", windows=windows))
    with pytest.raises(ValidationError, match="before it starts"):
        Window(start="2024-03-04T09:00:00", end="2024-03-04T08:00:00")


# -- quality ----------------------------------------------------------------------------------------------------


def test_check_quality_on_a_small_source_tree(logs: LogsApp, sandbox: Sandbox) -> None:
    src = sandbox.root / "src"
    src.mkdir()
    (src / "server.py").write_text(
        "import logging\n\nlog = logging.getLogger(__name__)\n\n\n"
        "def start(port, err):\n"
        '    log.info("Server started on port %d", port)\n'
        '    log.error("Server started successfully")\n'
        "    log.warning(err)\n"
    )
    (src / "broken.py").write_text("def broken(:\n    log.info('half a file')\n")
    result = logs.check_quality(QualityArgs(path="src"))
    assert (result.files_scanned, result.files_skipped, result.statements_checked) == (2, 1, 3)
    problems = {(f.file, f.line, f.problem) for f in result.findings}
    assert ("src/server.py", 8, "level") in problems  # "started successfully" is no error
    assert ("src/server.py", 9, "linguistic") in problems  # a bare variable says nothing
    assert all(f.line != 7 for f in result.findings)
    assert result.counts["total"] == len(result.findings) and result.skipped[0].startswith("src/broken.py")

    trashed = sandbox.root / ".trash" / "0123abcd" / "old.py"
    trashed.parent.mkdir(parents=True)
    trashed.write_text('import logging\nlogging.getLogger().error("Server started successfully")\n')
    whole = logs.check_quality(QualityArgs(path="."))  # the trash is not the user's code
    assert whole.files_scanned == 2 and {f.file for f in whole.findings} == {"src/server.py"}


# -- cancel ------------------------------------------------------------------------------------------------------


def _warm_imports() -> None:
    """What a first call imports once (torch, then torch._dynamo with the first optimizer, the taxonomy's
    libraries) takes seconds on busy cores, and no check interrupts an import: done before the clock starts."""
    import torch

    importlib.import_module("intentos.skills.logs.taxonomy")
    importlib.import_module("intentos.skills.logs.pull")
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


@pytest.mark.parametrize("verb", ["detect_anomalies", "label_from_failure_windows"])
def test_a_cancelled_call_stops_within_a_second(sandbox: Sandbox, truth: GroundTruth, verb: str) -> None:
    _warm_imports()
    # Training that would go on for many minutes: the cancel lands mid-way, wherever the call is by then.
    ctx = Context(sandbox=sandbox, settings={"logs": {"encoder": {**QUICK_ENCODER, "epochs": 100_000}}})
    app = LogsApp(ctx)
    windows = [Window(start=datetime.fromtimestamp(w.start, UTC), end=datetime.fromtimestamp(w.end, UTC))
               for w in truth.windows]
    call = {"detect_anomalies": lambda: app.detect_anomalies(DetectArgs(path="test.log", reference="normal.log")),
            "label_from_failure_windows": lambda: app.label_from_failure_windows(
                LabelArgs(path="test.log", windows=windows, output="cancelled/labels.csv"))}[verb]
    raised: list[tuple[BaseException, float]] = []

    def work() -> None:
        try:
            call()
        except BaseException as exc:  # whatever it is, the asserts below name it
            raised.append((exc, time.monotonic()))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive() and not raised, raised  # still working: the cancel comes mid-way
    ctx.cancelled.set()
    cancelled_at = time.monotonic()
    worker.join(timeout=10)
    assert not worker.is_alive() and raised
    exc, when = raised[0]
    assert isinstance(exc, kit.Cancelled) and isinstance(exc, AppError) and str(exc) == "cancelled", repr(exc)
    assert when - cancelled_at < 1.0
    assert not (sandbox.root / "cancelled").exists()  # nothing half-done is written


# -- bad input ---------------------------------------------------------------------------------------------------


def test_odd_files_are_handled_without_a_crash(logs: LogsApp, sandbox: Sandbox) -> None:
    root = sandbox.root
    head = (root / "test.log").read_bytes().splitlines(keepends=True)[:200]
    (root / "cut.log").write_bytes(b"".join(head)[:-25])  # the last line cut mid-way, no newline
    bad = b"2024-03-04 08:10:00.000 INFO  db: bad \xff\xfe\x00 bytes\n"
    huge = b"2024-03-04 08:10:00.100 INFO  db: " + b"x" * 200_000 + b"\n"
    (root / "garbled.log").write_bytes(b"".join(head[:100]) + bad + huge + b"".join(head[100:]))
    (root / "binary.log").write_bytes(bytes(range(256)) * 40)
    (root / "empty.log").write_bytes(b"")
    (root / "cut.log.gz").write_bytes(gzip.compress(b"".join(head) * 20)[:3000])

    cut = logs.parse(ParseArgs(path="cut.log"))
    assert cut.records == 200 and cut.odd.unterminated_last_line
    garbled = logs.parse(ParseArgs(path="garbled.log"))
    assert (garbled.records, garbled.odd.garbled, garbled.odd.truncated) == (202, 1, 1)
    empty = logs.parse(ParseArgs(path="empty.log"))
    assert empty.records == 0 and "empty" in empty.summary

    with pytest.raises(AppError, match="binary.log: looks like binary data"):
        logs.parse(ParseArgs(path="binary.log"))
    with pytest.raises(AppError, match="^cut.log.gz: cannot read"):
        logs.parse(ParseArgs(path="cut.log.gz"))
    with pytest.raises(AppError, match="empty.log has 0 log lines"):
        logs.detect_anomalies(DetectArgs(path="empty.log", method="unseen_template"))
    with pytest.raises(AppError, match="empty.log has no log lines to score"):
        logs.detect_anomalies(DetectArgs(path="empty.log", reference="normal.log", method="unseen_template"))
    (root / "short.log").write_bytes(b"".join(head[:20]))
    with pytest.raises(AppError, match="^short.log: no lines left to score after the 20 learned from"):
        logs.detect_anomalies(DetectArgs(path="short.log", train_fraction=0.9, method="unseen_template"))
    with pytest.raises(AppError, match="no log lines to label"):
        logs.label_from_failure_windows(LabelArgs(path="empty.log", windows=[Window(start="2024-03-04T08:00:00",
                                                                                     end="2024-03-04T09:00:00")]))


def test_paths_outside_the_sandbox_are_refused(logs: LogsApp, sandbox: Sandbox, tmp_path: Path) -> None:
    outside = tmp_path / "secret.log"
    outside.write_text("2024-03-04 08:00:00.000 INFO  x: hello\n")
    for args in (ParseArgs(path="../secret.log"), ParseArgs(path=str(outside)),
                 ParseArgs(path="test.log", state_file="../state.json"),
                 DetectArgs(path="test.log", reference="../../secret.log"), QualityArgs(path="..")):
        call = logs.parse if isinstance(args, ParseArgs) else (
            logs.detect_anomalies if isinstance(args, DetectArgs) else logs.check_quality)
        with pytest.raises(SandboxError, match="outside the sandbox"):
            call(args)
    window = Window(start="2024-03-04T08:00:00", end="2024-03-04T09:00:00")
    with pytest.raises(SandboxError, match="outside the sandbox"):
        logs.label_from_failure_windows(LabelArgs(path="test.log", windows=[window], output="../labels.csv"))
    with pytest.raises(AppError, match="keeps for itself"):
        logs.label_from_failure_windows(LabelArgs(path="test.log", windows=[window], output=".trash/labels.csv"))
    with pytest.raises(AppError, match="missing.log does not exist"):
        logs.parse(ParseArgs(path="missing.log"))
    (sandbox.root / "folder").mkdir()
    with pytest.raises(AppError, match="is a folder"):
        logs.parse(ParseArgs(path="folder"))
    assert not (sandbox.root.parent / "state.json").exists() and not (sandbox.root.parent / "labels.csv").exists()


def _bad_files(root: Path) -> dict[str, str]:
    """Files that are not text logs, and the problem each error must name."""
    good = b"".join(b"2024-03-04 08:00:%02d.000 INFO  db: query %d done\n" % (i % 60, i) for i in range(300))
    deflated = gzip.compress(good)
    broken = deflated[:10] + bytes(b ^ 0x5A for b in deflated[10:400]) + deflated[400:]  # zlib.error mid-stream
    files = {
        "fake.log.gz": (b"\x1f\x8b" + b"not gzip at all\n" * 20, "not valid gzip data"),
        "garbage.log.gz": (broken, "not valid gzip data"),
        "random.bin": (bytes((i * 37 + 11) % 256 for i in range(5000)), "binary data"),
        "latin1.log": ("2024-03-04 08:00:00.000 INFO  db: café naïve señor\n".encode("latin-1") * 40, "not UTF-8"),
        "utf16.log": ("2024-03-04 08:00:00.000 INFO  db: hello\n".encode("utf-16") * 40, "binary data"),
    }
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    return {name: problem for name, (_, problem) in files.items()}


def test_files_that_are_not_text_logs_give_one_line_naming_them(logs: LogsApp, sandbox: Sandbox) -> None:
    window = Window(start="2024-03-04T08:00:00", end="2024-03-04T08:00:30")
    for name, problem in _bad_files(sandbox.root).items():
        calls = [lambda n=name: logs.parse(ParseArgs(path=n)),
                 lambda n=name: logs.parse(ParseArgs(path=n, format="generic")),  # no format sniffing asked for
                 lambda n=name: logs.detect_anomalies(DetectArgs(path=n, method="unseen_template")),
                 lambda n=name: logs.detect_anomalies(DetectArgs(path="normal.log", reference=n,
                                                                 method="unseen_template")),
                 lambda n=name: logs.label_from_failure_windows(LabelArgs(path=n, windows=[window],
                                                                          output=f"{n}.csv"))]
        for call in calls:
            with pytest.raises(AppError) as info:
                call()
            message = str(info.value)
            assert message.startswith(f"{name}:") and problem in message and "\n" not in message, message


def test_bad_files_through_intentos_call(sandbox: Sandbox) -> None:
    from typer.testing import CliRunner

    from intentos.cli import app

    _bad_files(sandbox.root)
    for name in ("fake.log.gz", "garbage.log.gz", "latin1.log"):
        result = CliRunner().invoke(app, ["call", "logs.parse", "--args", json.dumps({"path": name}), "--sandbox",
                                          str(sandbox.root), "--json", "--yes"])
        done = json.loads(result.stdout)
        assert done["status"] == "failed" and done["error"].startswith(f"{name}: ") and "\n" not in done["error"]
