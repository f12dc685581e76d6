"""Model backends: spec parsing, settings precedence, and real generation through each client.

Inference tests (`-m model`) run the embedded SmolLM2-135M GGUF on the CPU, in-process and
behind a real `python -m llama_cpp.server`. ollama has no server on this machine, so its tests
speak to a small HTTP server in the test that talks ollama's wire format (see `FakeOllama`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from intentos.backends import (
    DEFAULT_SPEC,
    STOPPED,
    BackendSettings,
    GenerateOptions,
    GenerationCancelled,
    Message,
    available_backends,
    default_model_spec,
    embedded_model_path,
    load_backend_settings,
    make_backend,
    parse_spec,
)
from intentos.backends.settings import ENV_VARS
from intentos.config import load_settings
from intentos.errors import BackendError, WorkflowFileError

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
ASK_PERSON = [Message(role="system", content="You answer with JSON only."),
              Message(role="user", content="Give one person as JSON with a name and an age.")]
SHORT = GenerateOptions(max_tokens=40)
EMBEDDED = "llamacpp:smollm2"  # the model inside a package: no pull, fast


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's model settings must not leak into the tests."""
    for var in [*ENV_VARS, "INTENTOS_MODEL", "INTENTOS_CONFIG"]:
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(home: Path, text: str) -> Path:
    file = home / "config.yaml"
    file.write_text(text, encoding="utf-8")
    return file


# -- specs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, model, base_url", [
    ("llamacpp:smollm2", "llamacpp", "smollm2", None),
    ("llamacpp:/models/qwen2.5-7b-instruct-q4_k_m.gguf", "llamacpp", "/models/qwen2.5-7b-instruct-q4_k_m.gguf", None),
    ("llama.cpp:./m.GGUF", "llamacpp", "./m.GGUF", None),
    ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b", None),
    ("ollama:llama3.2", "ollama", "llama3.2", None),
    ("ollama:qwen2.5:7b@http://gpu-box:11434", "ollama", "qwen2.5:7b", "http://gpu-box:11434"),
    ("openai:gpt-4o", "openai", "gpt-4o", None),
    ("openai:local@http://127.0.0.1:8000/v1/", "openai", "local", "http://127.0.0.1:8000/v1"),
    ("openai:org/model:tag@https://example.org/v1", "openai", "org/model:tag", "https://example.org/v1"),
    (" OpenAI:gpt-4o-mini ", "openai", "gpt-4o-mini", None),
])
def test_parse_spec(text: str, kind: str, model: str, base_url: str | None) -> None:
    spec = parse_spec(text)
    assert (spec.kind, spec.model, spec.base_url) == (kind, model, base_url)
    assert parse_spec(str(spec)) == spec  # the canonical form round-trips


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("smollm2", "did you mean 'llamacpp:smollm2'"),
    ("gpt-4o", "no backend kind"),
    ("vllm:qwen", "unknown backend kind 'vllm'"),
    ("ollama:", "no model name"),
    ("openai:@http://127.0.0.1:8000/v1", "no model name"),
    ("openai:x@http://", "has no host"),
    ("llamacpp:qwen2.5", "path to a .gguf file"),
    ("llamacpp:smollm2@http://127.0.0.1:8000", "takes no server URL"),
    ("ollama:qwen 7b", "white space"),
])
def test_bad_specs_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(BackendError, match="bad model spec") as info:
        parse_spec(text)
    assert why in str(info.value)
    assert "llamacpp:smollm2" in str(info.value)  # the accepted forms are listed


def test_the_default_is_the_planning_model_and_the_embedded_one_is_present() -> None:
    assert DEFAULT_SPEC == "llamacpp:qwen2.5-coder-1.5b"
    assert parse_spec(DEFAULT_SPEC).known_model == "qwen2.5-coder-1.5b"
    path = embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert parse_spec("llamacpp:smollm2").model_path() == path


def test_importing_backends_loads_no_client_library() -> None:
    code = ("import sys, intentos.backends as b; b.make_backend('ollama:x'); "
            "print(sorted(m for m in ('llama_cpp', 'ollama', 'openai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "INTENTOS_HOME": os.environ["INTENTOS_HOME"]})
    assert out.stdout.strip() == "[]"


# -- settings ---------------------------------------------------------------------------------------------------

CONFIG = """\
model: "ollama:qwen2.5:7b"
models:
  defaults:
    n_ctx: 1024
    max_tokens: 100
    request_timeout: 30
  "ollama:qwen2.5:7b":
    n_ctx: 8192
  "openai:local@http://127.0.0.1:8000/v1":
    max_tokens: 64
"""


def test_settings_defaults_without_config() -> None:
    settings = load_backend_settings()
    assert settings == BackendSettings()
    assert (settings.spec, settings.n_gpu_layers, settings.n_ctx, settings.n_threads) == (DEFAULT_SPEC, 0, 12288, None)


def test_settings_precedence(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(isolated_home, CONFIG)
    # config: defaults, then the entry for the spec in use
    s = load_backend_settings()
    assert (s.spec, s.n_ctx, s.max_tokens, s.request_timeout) == ("ollama:qwen2.5:7b", 8192, 100, 30)
    s = load_backend_settings("llamacpp:smollm2")
    assert (s.spec, s.n_ctx, s.max_tokens) == ("llamacpp:smollm2", 1024, 100)
    assert load_backend_settings("openai:local@http://127.0.0.1:8000/v1/").max_tokens == 64
    # environment beats the file
    monkeypatch.setenv("INTENTOS_N_CTX", "2048")
    monkeypatch.setenv("INTENTOS_N_GPU_LAYERS", "all")
    monkeypatch.setenv("INTENTOS_N_THREADS", "2")
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.2:11434")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.3:8000/v1")
    s = load_backend_settings()
    assert (s.n_ctx, s.n_gpu_layers, s.n_threads, s.ollama_host) == (2048, -1, 2, "http://10.0.0.2:11434")
    assert (s.openai_api_key, s.openai_base_url) == ("sk-test", "http://10.0.0.3:8000/v1")
    assert "sk-test" not in repr(s) and s.public()["openai_api_key"] == "set"
    # explicit overrides (flags) beat everything; None means "flag not given"
    s = load_backend_settings(None, {"n_ctx": 512, "n_gpu_layers": None, "n_threads": 1})
    assert (s.n_ctx, s.n_gpu_layers, s.n_threads) == (512, -1, 1)


def test_default_model_spec_precedence(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_model_spec() == DEFAULT_SPEC
    write_config(isolated_home, CONFIG)
    assert default_model_spec() == "ollama:qwen2.5:7b"
    monkeypatch.setenv("INTENTOS_MODEL", "openai:gpt-4o")
    assert default_model_spec() == "openai:gpt-4o"
    assert default_model_spec("llamacpp:smollm2") == "llamacpp:smollm2"
    assert load_backend_settings("llamacpp:smollm2").spec == "llamacpp:smollm2"
    monkeypatch.setenv("INTENTOS_MODEL", "nonsense")
    with pytest.raises(BackendError, match="INTENTOS_MODEL"):
        default_model_spec()


def test_available_backends_lists_default_then_config(isolated_home: Path) -> None:
    assert available_backends() == [DEFAULT_SPEC]
    write_config(isolated_home, CONFIG)
    assert available_backends() == ["ollama:qwen2.5:7b", "openai:local@http://127.0.0.1:8000/v1"]


@pytest.mark.parametrize("text, line, message", [
    ("models:\n  defaults:\n    n_ctx: many\n", 3, "n_ctx"),
    ("models:\n  defaults: {}\n  qwen: {n_ctx: 2}\n", 3, "keys are `defaults` or model specs"),
    ("models:\n  defaults:\n    n_gpu: 3\n", 3, "Extra inputs are not permitted"),
    ("model: nonsense\n", 1, "bad model spec"),
    ("models: [1, 2]\n", 1, "must be a mapping"),
])
def test_bad_config_names_file_and_line(isolated_home: Path, text: str, line: int, message: str) -> None:
    file = write_config(isolated_home, text)
    with pytest.raises(WorkflowFileError) as info:
        load_backend_settings()
    assert info.value.path == str(file) and info.value.line == line
    assert message in str(info.value)


def test_one_config_file_serves_the_agent_and_the_models(isolated_home: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTENTOS_TIMEZONE", raising=False)
    write_config(isolated_home, "agent:\n  # timezone: Europe/Berlin\nmodels:\n")  # an empty section is empty
    assert load_backend_settings().spec == DEFAULT_SPEC and load_settings().step_timeout == 120.0
    write_config(isolated_home, "model: ollama:qwen2.5:7b\nmodels:\n  defaults: {n_ctx: 4096}\n"
                                "agent:\n  timezone: Asia/Tokyo\n  step_timeout: 5\n")
    assert load_backend_settings().n_ctx == 4096 and default_model_spec() == "ollama:qwen2.5:7b"
    assert load_settings().timezone == "Asia/Tokyo" and load_settings().step_timeout == 5


@pytest.mark.parametrize("text, line, message", [
    ("agent:\n  timezone: Mars/Olympus\n", 2, "unknown time zone"),
    ("agent: [1]\n", 1, "the `agent:` section must be a mapping"),
    ("- agent\n", 1, "the config file must be a mapping"),
])
def test_bad_agent_config_names_file_and_line(isolated_home: Path, text: str, line: int, message: str) -> None:
    file = write_config(isolated_home, text)
    with pytest.raises(WorkflowFileError) as info:
        load_settings()
    assert info.value.path == str(file) and info.value.line == line
    assert message in str(info.value)


def test_bad_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENTOS_N_CTX", "lots")
    with pytest.raises(BackendError, match="INTENTOS_N_CTX='lots'"):
        load_backend_settings()


def test_make_backend_picks_the_class() -> None:
    from intentos.backends import LlamaCppBackend, OllamaBackend, OpenAIBackend

    assert isinstance(make_backend(EMBEDDED), LlamaCppBackend)
    ollama_backend = make_backend("ollama:qwen2.5:7b@http://gpu-box:11434")
    assert isinstance(ollama_backend, OllamaBackend) and ollama_backend.host == "http://gpu-box:11434"
    openai_backend = make_backend("openai:local@http://127.0.0.1:8000/v1")
    assert isinstance(openai_backend, OpenAIBackend) and openai_backend.api_key == "sk-no-key"
    settings = BackendSettings(spec="ollama:x", ollama_host="http://h:1")
    assert make_backend(settings=settings).describe()["host"] == "http://h:1"


# -- reachability -----------------------------------------------------------------------------------------------


def test_unreachable_backends_say_why(tmp_path: Path) -> None:
    ok, why = make_backend(f"llamacpp:{tmp_path / 'missing.gguf'}").reachable()
    assert not ok and "no model file" in why and "missing.gguf" in why
    port = free_port()  # nothing listens there
    ok, why = make_backend(f"ollama:qwen2.5:7b@http://127.0.0.1:{port}").reachable()
    assert not ok and f"127.0.0.1:{port}" in why and "does not answer" in why
    ok, why = make_backend(f"openai:local@http://127.0.0.1:{port}/v1").reachable()
    assert not ok and "does not answer" in why
    with pytest.raises(BackendError, match="no model file"):
        make_backend(f"llamacpp:{tmp_path / 'missing.gguf'}").generate(ASK_PERSON)
    with pytest.raises(BackendError, match="cannot reach"):
        make_backend(f"openai:local@http://127.0.0.1:{port}/v1").generate(ASK_PERSON, options=SHORT)
    with pytest.raises(BackendError, match="cannot reach ollama"):
        make_backend(f"ollama:qwen2.5:7b@http://127.0.0.1:{port}").generate(ASK_PERSON, options=SHORT)


def test_openai_without_key_is_unreachable() -> None:
    ok, why = make_backend("openai:gpt-4o").reachable()
    assert not ok and "OPENAI_API_KEY" in why


# -- llama.cpp in-process (real inference) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama() -> Any:
    from intentos.backends import LlamaCppBackend

    return LlamaCppBackend(EMBEDDED, BackendSettings(n_ctx=2048))


@pytest.mark.model
def test_llamacpp_chat_reports_tokens_and_timings(llama: Any) -> None:
    gen = llama.generate([Message(role="user", content="Say hello in one short sentence.")],
                         options=GenerateOptions(max_tokens=24))
    assert gen.text.strip() and gen.model == EMBEDDED and gen.structured == "none"
    assert gen.prompt_tokens > 5 and 0 < gen.completion_tokens <= 26
    assert gen.ttft_s is not None and 0 < gen.ttft_s <= gen.total_s
    assert gen.finish_reason in ("stop", "length") and gen.tokens_per_s
    info = llama.describe()
    assert info["loaded"] and info["size_bytes"] == embedded_model_path().stat().st_size
    assert info["n_gpu_layers"] == 0 and info["n_ctx"] == 2048 and isinstance(info["gpu_offload_supported"], bool)


@pytest.mark.model
def test_llamacpp_window_is_no_larger_than_the_model_was_trained_with() -> None:
    from intentos.backends import LlamaCppBackend

    # SmolLM2 was trained on 8192 tokens: a larger window would only let prompts grow where it reads badly.
    assert LlamaCppBackend(EMBEDDED, BackendSettings(n_ctx=12288)).describe()["n_ctx"] == 8192
    assert LlamaCppBackend(EMBEDDED, BackendSettings(n_ctx=4096)).describe()["n_ctx"] == 4096


@pytest.mark.model
def test_llamacpp_grammar_output_follows_the_schema(llama: Any) -> None:
    gen = llama.generate(ASK_PERSON, schema=PERSON, options=SHORT)
    assert gen.structured == "grammar"
    jsonschema.validate(json.loads(gen.text), PERSON)


@pytest.mark.model
def test_llamacpp_falls_back_to_json_object_when_no_grammar(llama: Any) -> None:
    schema = {"type": "object", "properties": {"name": {"not": {"type": "null"}}}}  # `not` has no grammar
    gen = llama.generate(ASK_PERSON, schema=schema, options=GenerateOptions(max_tokens=60))
    assert gen.structured == "json_object" and "Unrecognized schema" in llama.last_structured_error
    assert isinstance(json.loads(gen.text), dict)


@pytest.mark.model
def test_llamacpp_streams_fragments_and_shares_the_model(llama: Any) -> None:
    from intentos.backends import LlamaCppBackend

    pieces: list[str] = []
    gen = llama.generate(ASK_PERSON, schema=PERSON, options=GenerateOptions(max_tokens=40, on_token=pieces.append))
    assert len(pieces) > 3 and "".join(pieces) == gen.text
    twin = LlamaCppBackend(EMBEDDED, BackendSettings(n_ctx=2048))
    assert twin.load() is llama.load()  # loaded once per process and settings


@pytest.mark.model
def test_llamacpp_cancellation(llama: Any) -> None:
    pieces: list[str] = []
    options = GenerateOptions(max_tokens=200, on_token=pieces.append, cancelled=lambda: len(pieces) >= 3)
    with pytest.raises(GenerationCancelled):
        llama.generate([Message(role="user", content="Tell a long story about a cat.")], options=options)
    assert len(pieces) == 3
    with pytest.raises(GenerationCancelled):
        llama.generate(ASK_PERSON, options=GenerateOptions(cancelled=lambda: True))
    assert llama.generate(ASK_PERSON, schema=PERSON, options=SHORT).text  # the model still works afterwards


@pytest.mark.model
def test_llamacpp_stops_when_the_caller_has_seen_enough(llama: Any) -> None:
    seen: list[str] = []
    gen = llama.generate([Message(role="user", content="Tell a long story about a cat.")],
                         options=GenerateOptions(max_tokens=200, stop_when=lambda text: seen.append(text) or
                                                 len(seen) >= 4))
    assert gen.finish_reason == STOPPED and gen.text == seen[-1] and len(seen) == 4


@pytest.mark.model
def test_llamacpp_weighs_answers_as_the_model_would_start_its_reply(llama: Any) -> None:
    question = [Message(role="user", content="Is Paris the capital of France? Answer yes or no.")]
    before = llama.generate(question, options=GenerateOptions(max_tokens=8))
    first = before.text.strip().split()[0].strip(".,!").lower()
    weights = llama.weigh(question, [first, "zebra"])
    assert set(weights) == {first, "zebra"} and all(w <= 0 for w in weights.values())
    assert weights[first] > weights["zebra"]  # the word the model starts with outweighs one it would not write
    assert llama.weigh(question, [first, "zebra"]) == weights  # read from logits: the same every time
    # Weighing shares the KV cache with generation: the reply afterwards is the same as before.
    assert llama.generate(question, options=GenerateOptions(max_tokens=8)).text == before.text


# -- OpenAI-compatible: a real llama.cpp server ----------------------------------------------------------------


@pytest.mark.model
def test_openai_backend_structured_output_against_llama_server(llama_server: str) -> None:
    backend = make_backend(f"openai:smollm2@{llama_server}")
    ok, why = backend.reachable()
    assert ok, why
    pieces: list[str] = []
    gen = backend.generate(ASK_PERSON, schema=PERSON, options=GenerateOptions(max_tokens=40, on_token=pieces.append))
    jsonschema.validate(json.loads(gen.text), PERSON)
    assert "".join(pieces) == gen.text and gen.ttft_s is not None and gen.total_s >= gen.ttft_s
    # llama-cpp-python's server rejects type=json_schema (500, naming response_format), so the backend
    # falls back to JSON mode with the schema, which that server turns into a grammar; and remembers it.
    assert gen.structured in ("json_schema", "json_object")
    assert backend.response_format_mode in ("json_schema", "json_object+schema"), backend.response_format_mode
    again = backend.generate(ASK_PERSON, schema=PERSON, options=SHORT)
    jsonschema.validate(json.loads(again.text), PERSON)


@pytest.mark.model
def test_openai_backend_plain_chat_and_cancel(llama_server: str) -> None:
    backend = make_backend(f"openai:smollm2@{llama_server}")
    gen = backend.generate([Message(role="user", content="Say hello.")], options=GenerateOptions(max_tokens=16))
    assert gen.text.strip() and gen.structured == "none" and gen.finish_reason in ("stop", "length")
    pieces: list[str] = []
    options = GenerateOptions(max_tokens=100, on_token=pieces.append, cancelled=lambda: len(pieces) >= 2)
    with pytest.raises(GenerationCancelled):
        backend.generate([Message(role="user", content="Tell a long story.")], options=options)
    assert len(pieces) == 2
    stopped = backend.generate([Message(role="user", content="Tell a long story.")],
                               options=GenerateOptions(max_tokens=100, stop_when=lambda text: len(text) > 10))
    assert stopped.finish_reason == STOPPED and len(stopped.text) > 10 and len(stopped.text) < 200


# -- ollama: our client wiring against a wire-format double ------------------------------------------------------


class FakeOllama:
    """A real HTTP server on 127.0.0.1 that speaks ollama's /api/tags and streaming /api/chat (NDJSON).

    It tests how OllamaBackend drives the ollama client (request body, stream parsing, final
    counters, errors), not a model: the answer is canned. With `reject_schema` it refuses a JSON
    schema in `format` the way a pre-0.5 ollama would.
    """

    def __init__(self, models: list[str], answer: str, reject_schema: bool = False) -> None:
        self.models, self.answer, self.reject_schema = models, answer, reject_schema
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/api/tags":
                    return self._json(404, {"error": "not found"})
                self._json(200, {"models": [{"name": m, "model": m, "modified_at": "2026-01-01T00:00:00Z",
                                             "size": 4_683_087_332, "digest": "0" * 64,
                                             "details": {"format": "gguf", "family": "qwen2"}} for m in fake.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if self.path != "/api/chat":
                    return self._json(404, {"error": "not found"})
                if body["model"] not in fake.models:
                    return self._json(404, {"error": f"model '{body['model']}' not found"})
                if fake.reject_schema and isinstance(body.get("format"), dict):
                    return self._json(400, {"error": "invalid format: expected \"json\" or a JSON schema"})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                words = fake.answer.split(" ")
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    self.wfile.write((json.dumps({"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                                                  "message": {"role": "assistant", "content": piece},
                                                  "done": False}) + "\n").encode())
                    self.wfile.flush()
                final = {"model": body["model"], "created_at": "2026-01-01T00:00:01Z",
                         "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                         "total_duration": 900_000_000, "load_duration": 100_000_000, "prompt_eval_count": 31,
                         "prompt_eval_duration": 200_000_000, "eval_count": len(words),
                         "eval_duration": 500_000_000}
                self.wfile.write((json.dumps(final) + "\n").encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOllama:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


ANSWER = '{"name": "Ada Lovelace", "age": 36}'


def test_ollama_backend_sends_schema_and_reads_the_stream() -> None:
    with FakeOllama(["qwen2.5:7b", "llama3.2:latest"], ANSWER) as server:
        backend = make_backend(f"ollama:qwen2.5:7b@{server.url}")
        assert backend.reachable() == (True, f"ollama at {server.url} serves qwen2.5:7b")
        assert make_backend(f"ollama:llama3.2@{server.url}").reachable()[0]  # `:latest` is implied
        ok, why = make_backend(f"ollama:mistral@{server.url}").reachable()
        assert not ok and "ollama pull mistral" in why

        pieces: list[str] = []
        gen = backend.generate(ASK_PERSON, schema=PERSON,
                               options=GenerateOptions(max_tokens=50, seed=7, on_token=pieces.append))
        body = server.requests[-1]
        assert body["format"] == PERSON and body["stream"] is True
        assert body["options"] == {"temperature": 0.0, "num_predict": 50, "repeat_penalty": 1.0, "seed": 7}
        assert body["messages"][1] == {"role": "user", "content": ASK_PERSON[1].content}
        assert gen.text == ANSWER and "".join(pieces) == ANSWER and len(pieces) == 5
        assert (gen.prompt_tokens, gen.completion_tokens, gen.finish_reason) == (31, 5, "stop")
        assert gen.structured == "json_schema" and gen.server_timings["eval_s"] == pytest.approx(0.5)
        jsonschema.validate(json.loads(gen.text), PERSON)

        plain = backend.generate([Message(role="user", content="hi")], options=SHORT)
        assert "format" not in server.requests[-1] or server.requests[-1]["format"] is None
        assert plain.structured == "none"

        with pytest.raises(BackendError, match="ollama pull mistral"):
            make_backend(f"ollama:mistral@{server.url}").generate(ASK_PERSON, options=SHORT)
        pieces.clear()
        with pytest.raises(GenerationCancelled):
            backend.generate(ASK_PERSON, options=GenerateOptions(on_token=pieces.append,
                                                                 cancelled=lambda: len(pieces) >= 2))
        assert len(pieces) == 2
        stopped = backend.generate(ASK_PERSON, options=GenerateOptions(stop_when=lambda text: len(text) >= 3))
        assert stopped.finish_reason == STOPPED and stopped.text != ANSWER and ANSWER.startswith(stopped.text)
        assert stopped.server_timings == {}  # the stream ended before the final counters


def test_ollama_backend_falls_back_to_json_format() -> None:
    with FakeOllama(["qwen2.5:7b"], ANSWER, reject_schema=True) as server:
        backend = make_backend(f"ollama:qwen2.5:7b@{server.url}")
        gen = backend.generate(ASK_PERSON, schema=PERSON, options=SHORT)
        assert [r.get("format") for r in server.requests] == [PERSON, "json"]
        assert gen.structured == "json_object" and gen.text == ANSWER
        backend.generate(ASK_PERSON, schema=PERSON, options=SHORT)  # remembered: no schema attempt
        assert server.requests[-1]["format"] == "json" and len(server.requests) == 3


@pytest.mark.model
def test_grammar_sampling_checks_the_models_choice_and_picks_what_the_whole_vocabulary_filter_picks() -> None:
    """The model's best token is checked first; where the grammar rejects it (a person asked for, digits
    allowed) the best allowed one is still the one llama.cpp's own filter of all 49k tokens finds."""
    import llama_cpp

    from intentos.backends.grammar_sampling import GrammarCheckedLlama

    path = str(embedded_model_path())
    stock = llama_cpp.Llama(path, n_ctx=1024, n_threads=2, verbose=False)
    checked = GrammarCheckedLlama(path, n_ctx=1024, n_threads=2, verbose=False)
    digits = {"type": "object", "properties": {"age": {"type": "integer"}, "codes": {"type": "array", "items":
              {"type": "string", "pattern": "^[0-9]{3}$"}}}, "required": ["age", "codes"]}
    prompt = "<|im_start|>user\nDescribe Anna, a friendly colleague.<|im_end|>\n<|im_start|>assistant\n"
    for schema in (PERSON, digits):
        grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        texts = [llm.create_completion(prompt, grammar=grammar, max_tokens=120, temperature=0.0)["choices"][0]["text"]
                 for llm in (stock, checked)]
        assert texts[0] == texts[1] and texts[1].startswith("{")  # the 135M model may run past max_tokens
    steps = checked.last_sampler
    assert steps is not None and steps.checked > 0 and steps.few + steps.filtered > 0
    # With a temperature: the model's own draw where allowed, else a draw among the allowed tokens; seeded.
    draws = [checked.create_completion(prompt, grammar=grammar, max_tokens=80, temperature=0.7, seed=3)
             ["choices"][0]["text"] for _ in range(2)]
    assert draws[0] == draws[1] and re.match(r'\{\s*"age"\s*:\s*-?\d', draws[0])
    assert checked.last_sampler is not steps and checked.last_sampler.filtered > 0
    # Without the check, llama-cpp-python's own sampling (the benchmark's comparison).
    checked.check_first = False
    checked.create_completion(prompt, grammar=grammar, max_tokens=5, temperature=0.0)
    assert checked.last_sampler.filtered > 0 and checked._sampler is not checked.last_sampler
