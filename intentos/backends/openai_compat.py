"""Any OpenAI-compatible chat endpoint: api.openai.com, llama.cpp's server, vLLM, LM Studio, ollama's /v1...

Structured output asks for `response_format: {"type": "json_schema", ...}`. A server that rejects
that (a 4xx, or llama-cpp-python's 500, naming response_format) is asked once more with
`{"type": "json_object", "schema": ...}` (the JSON-mode form with a schema that llama-cpp-python,
Together and Anyscale honour), and if that too is rejected, with plain `{"type": "json_object"}`.
What worked is remembered for the backend's lifetime and reported as structured="json_object".
Token counts come from `stream_options.include_usage`; a server that sends no usage gives 0.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from intentos.backends.base import STOPPED, GenerateOptions, Generation, GenerationCancelled, Message, StreamCollector
from intentos.backends.settings import BackendSettings
from intentos.backends.spec import ModelSpec, parse_spec
from intentos.errors import BackendError

NO_KEY = "sk-no-key"
OPENAI_HOST = "api.openai.com"
REACHABLE_TIMEOUT_S = 3.0


def _rejects(exc: Exception, *words: str) -> bool:
    """Whether an API error is a server refusing a request parameter named by one of `words`."""
    import openai

    if not isinstance(exc, openai.APIStatusError) or not 400 <= exc.status_code < 600:
        return False
    text = f"{exc.message} {exc.body}".lower()
    return any(word in text for word in words)


class OpenAIBackend:
    """A model behind an OpenAI-compatible /v1/chat/completions endpoint."""

    def __init__(self, spec: str | ModelSpec, settings: BackendSettings | None = None) -> None:
        parsed = parse_spec(spec)
        if parsed.kind != "openai":
            raise BackendError(f"OpenAIBackend needs an openai: spec, not {parsed}")
        self.model_spec = parsed
        self.spec = str(parsed)
        self.model = parsed.model
        self.settings = settings or BackendSettings()
        self.base_url = (parsed.base_url or self.settings.openai_base_url or "").rstrip("/") or None
        self._client: Any = None
        # How structured output is asked for: a response_format template, learnt on the first schema call.
        self.response_format_mode: str | None = None  # "json_schema" | "json_object+schema" | "json_object"
        self.stream_usage_supported: bool | None = None

    @property
    def api_key(self) -> str | None:
        if self.settings.openai_api_key:
            return self.settings.openai_api_key
        host = urlsplit(self.base_url).hostname if self.base_url else OPENAI_HOST
        return NO_KEY if host != OPENAI_HOST else None  # local / self-hosted servers need no key

    def client(self) -> Any:
        if self._client is None:
            import openai

            if self.api_key is None:
                raise BackendError(f"{self.spec}: set OPENAI_API_KEY (or models.\"{self.spec}\".openai_api_key)")
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key,
                                         timeout=self.settings.request_timeout, max_retries=1)
        return self._client

    @staticmethod
    def _response_format(mode: str, schema: dict[str, Any]) -> dict[str, Any]:
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "workflow", "schema": schema, "strict": False}}
        if mode == "json_object+schema":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_object"}

    def _open(self, kwargs: dict[str, Any], schema: dict[str, Any] | None) -> tuple[Any, str]:
        """Start the stream, learning which response_format and stream_options the server accepts."""
        import openai

        modes = ["json_schema", "json_object+schema", "json_object"]
        if self.response_format_mode is not None:
            modes = modes[modes.index(self.response_format_mode):]
        while True:
            mode = modes[0] if schema is not None else "none"
            call = dict(kwargs)
            if schema is not None:
                call["response_format"] = self._response_format(mode, schema)
            if self.stream_usage_supported is not False:
                call["stream_options"] = {"include_usage": True}
            learning = (schema is not None and self.response_format_mode is None) or self.stream_usage_supported is None
            client = self.client().with_options(max_retries=0) if learning else self.client()
            try:
                stream = client.chat.completions.create(**call)
            except openai.APIStatusError as exc:
                if "stream_options" in call and self.stream_usage_supported is None and _rejects(exc, "stream_options"):
                    self.stream_usage_supported = False
                    continue
                if schema is not None and len(modes) > 1 and _rejects(exc, "response_format", "json_schema"):
                    modes.pop(0)
                    continue
                raise
            if schema is not None:
                self.response_format_mode = mode
            if self.stream_usage_supported is None:
                self.stream_usage_supported = True
            return stream, mode

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        import openai

        options = options or GenerateOptions(max_tokens=self.settings.max_tokens, seed=self.settings.seed)
        seed = options.seed if options.seed is not None else self.settings.seed
        kwargs: dict[str, Any] = {"model": self.model, "stream": True, "max_tokens": options.max_tokens,
                                  "temperature": options.temperature,
                                  "messages": [{"role": m.role, "content": m.content} for m in messages]}
        if seed is not None:
            kwargs["seed"] = seed
        if OPENAI_HOST not in (self.base_url or OPENAI_HOST):
            # llama.cpp's server applies its own repeat penalty (1.1) unless told; OpenAI itself rejects the field.
            kwargs["extra_body"] = {"repeat_penalty": options.repeat_penalty}
        where = self.base_url or f"https://{OPENAI_HOST}/v1"
        collected = StreamCollector(options)
        finish: str | None = None
        usage: Any = None
        stream: Any = None
        try:
            stream, mode = self._open(kwargs, schema)
            for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                if collected.add(choice.delta.content if choice.delta is not None else None):
                    finish = STOPPED
                    break
        except GenerationCancelled:
            raise
        except openai.APIConnectionError as exc:
            raise BackendError(f"cannot reach {where} ({exc}); is the server running?") from exc
        except openai.AuthenticationError as exc:
            raise BackendError(f"{where} rejected the API key (set OPENAI_API_KEY): {exc.message}") from exc
        except openai.NotFoundError as exc:
            raise BackendError(f"{where} has no model {self.model!r}: {exc.message}") from exc
        except openai.APIError as exc:
            raise BackendError(f"{where} failed: {exc.message}") from exc
        finally:
            if stream is not None:
                stream.close()
        total = collected.elapsed()
        structured = "none" if schema is None else ("json_schema" if mode == "json_schema" else "json_object")
        return Generation(text=collected.text, model=self.spec,
                          prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
                          completion_tokens=(usage.completion_tokens or 0) if usage else 0,
                          ttft_s=collected.ttft_s, total_s=total, structured=structured, finish_reason=finish)

    def reachable(self) -> tuple[bool, str]:
        where = self.base_url or f"https://{OPENAI_HOST}/v1"
        try:
            client = self.client().with_options(timeout=REACHABLE_TIMEOUT_S, max_retries=0)
            ids = [m.id for m in client.models.list()]
        except BackendError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{where} does not answer ({type(exc).__name__}: {exc})"
        if self.model in ids:
            return True, f"{where} serves {self.model}"
        return True, (f"{where} answers ({len(ids)} model(s) listed, {self.model!r} not among them; "
                      "it may still serve it)")

    def describe(self) -> dict[str, Any]:
        return {"kind": "openai", "spec": self.spec, "model": self.model,
                "base_url": self.base_url or f"https://{OPENAI_HOST}/v1",
                "api_key": "set" if self.settings.openai_api_key else ("none needed" if self.api_key else "missing"),
                "request_timeout": self.settings.request_timeout,
                "response_format_mode": self.response_format_mode}
