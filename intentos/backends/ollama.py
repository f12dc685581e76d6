"""ollama: a model pulled into an ollama server (`ollama serve`), over its HTTP API.

Structured output uses ollama's `format`: the JSON schema itself (ollama >= 0.5); a server that
rejects a schema there is asked for `format: "json"` (any JSON) instead, and that is remembered.
Token counts and server durations come from the stream's final chunk.
"""

from __future__ import annotations

from typing import Any

from intentos.backends.base import STOPPED, GenerateOptions, Generation, GenerationCancelled, Message, StreamCollector
from intentos.backends.settings import BackendSettings
from intentos.backends.spec import ModelSpec, parse_spec
from intentos.errors import BackendError

REACHABLE_TIMEOUT_S = 3.0


def _ns(value: int | None) -> float | None:
    return value / 1e9 if value else None


class OllamaBackend:
    """A model served by ollama."""

    def __init__(self, spec: str | ModelSpec, settings: BackendSettings | None = None) -> None:
        parsed = parse_spec(spec)
        if parsed.kind != "ollama":
            raise BackendError(f"OllamaBackend needs an ollama: spec, not {parsed}")
        self.model_spec = parsed
        self.spec = str(parsed)
        self.model = parsed.model
        self.settings = settings or BackendSettings()
        self.host = parsed.base_url or self.settings.ollama_host
        self._client: Any = None
        self.schema_format_supported: bool | None = None  # None until a server answered a schema request
        self.last_server_timings: dict[str, float] = {}

    def client(self, timeout: float | None = None) -> Any:
        import ollama

        if timeout is not None:
            return ollama.Client(host=self.host, timeout=timeout)
        if self._client is None:
            self._client = ollama.Client(host=self.host, timeout=self.settings.request_timeout)
        return self._client

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        import ollama

        options = options or GenerateOptions(max_tokens=self.settings.max_tokens, seed=self.settings.seed)
        seed = options.seed if options.seed is not None else self.settings.seed
        server_options: dict[str, Any] = {"temperature": options.temperature, "num_predict": options.max_tokens,
                                          "repeat_penalty": options.repeat_penalty}
        if seed is not None:
            server_options["seed"] = seed
        chat = [{"role": m.role, "content": m.content} for m in messages]
        fmt: Any = None
        structured = "none"
        if schema is not None:
            if self.schema_format_supported is False:
                fmt, structured = "json", "json_object"
            else:
                fmt, structured = schema, "json_schema"
        collected = StreamCollector(options)
        final: Any = None
        stopped = False
        attempt = 0
        while True:
            attempt += 1
            stream: Any = None
            try:
                stream = iter(self.client().chat(model=self.model, messages=chat, stream=True, format=fmt,
                                                 options=server_options))
                for chunk in stream:
                    if chunk.done:
                        final = chunk
                    if collected.add(chunk.message.content if chunk.message is not None else None):
                        stopped = True
                        break
                break
            except ollama.ResponseError as exc:
                rejects_schema = (structured == "json_schema" and not collected.parts and attempt == 1
                                  and 400 <= (exc.status_code or 0) < 500 and "format" in str(exc).lower())
                if rejects_schema:
                    self.schema_format_supported = False
                    fmt, structured = "json", "json_object"
                    continue
                if exc.status_code == 404:
                    raise BackendError(f"ollama at {self.host} has no model {self.model!r}: "
                                       f"run `ollama pull {self.model}` ({exc.error})") from exc
                raise BackendError(f"ollama at {self.host} refused the request: {exc.error}") from exc
            except (GenerationCancelled, BackendError):
                raise
            except Exception as exc:  # no server, connection dropped mid-stream, bad chunk
                if not collected.parts:
                    raise BackendError(f"cannot reach ollama at {self.host} ({exc}); is `ollama serve` running?") \
                        from exc
                raise BackendError(f"ollama at {self.host} failed mid-generation: {exc}") from exc
            finally:
                if stream is not None and hasattr(stream, "close"):
                    stream.close()
        total = collected.elapsed()
        if structured == "json_schema":
            self.schema_format_supported = True

        prompt_tokens = completion_tokens = 0
        finish: str | None = None
        timings: dict[str, float] = {}
        if final is not None:
            prompt_tokens = final.prompt_eval_count or 0
            completion_tokens = final.eval_count or 0
            finish = final.done_reason
            for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
                if (seconds := _ns(getattr(final, name, None))) is not None:
                    timings[name.replace("_duration", "_s")] = seconds
        if stopped:
            finish = STOPPED
        self.last_server_timings = timings
        return Generation(text=collected.text, model=self.spec, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, ttft_s=collected.ttft_s, total_s=total,
                          structured=structured, finish_reason=finish, server_timings=timings)

    def pulled_models(self, timeout: float = REACHABLE_TIMEOUT_S) -> list[str]:
        response = self.client(timeout=timeout).list()
        return [m.model for m in response.models if m.model]

    def reachable(self) -> tuple[bool, str]:
        try:
            names = self.pulled_models()
        except Exception as exc:
            return False, f"ollama at {self.host} does not answer ({type(exc).__name__}: {exc})"
        wanted = {self.model, self.model + ":latest"} if ":" not in self.model else {self.model}
        if not wanted & set(names):
            return False, (f"ollama at {self.host} answers but has no model {self.model!r}: "
                           f"run `ollama pull {self.model}`")
        return True, f"ollama at {self.host} serves {self.model}"

    def describe(self) -> dict[str, Any]:
        return {"kind": "ollama", "spec": self.spec, "model": self.model, "host": self.host,
                "request_timeout": self.settings.request_timeout,
                "schema_format_supported": self.schema_format_supported}
