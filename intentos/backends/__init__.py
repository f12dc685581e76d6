"""Model backends: one `Backend` protocol (`base`), three implementations, chosen by a spec string.

    make_backend("llamacpp:smollm2")           # in-process llama.cpp, the embedded SmolLM2 (the default)
    make_backend("ollama:qwen2.5:7b")          # an ollama server
    make_backend("openai:gpt-4o")              # any OpenAI-compatible endpoint

Importing this package imports none of llama_cpp, ollama or openai: each backend module imports
its client library when first used, and the classes are loaded on attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from intentos.backends.base import STOPPED, Backend, GenerateOptions, Generation, GenerationCancelled, Message
from intentos.backends.settings import BackendSettings, configured_specs, default_model_spec, load_backend_settings
from intentos.backends.spec import DEFAULT_SPEC, ModelSpec, embedded_model_path, parse_spec

if TYPE_CHECKING:
    from intentos.backends.llamacpp import LlamaCppBackend
    from intentos.backends.ollama import OllamaBackend
    from intentos.backends.openai_compat import OpenAIBackend

__all__ = [
    "DEFAULT_SPEC", "STOPPED", "Backend", "BackendSettings", "GenerateOptions", "Generation", "GenerationCancelled",
    "LlamaCppBackend", "Message", "ModelSpec", "OllamaBackend", "OpenAIBackend", "available_backends",
    "default_model_spec", "embedded_model_path", "load_backend_settings", "make_backend", "parse_spec",
]

_CLASSES = {
    "llamacpp": ("intentos.backends.llamacpp", "LlamaCppBackend"),
    "ollama": ("intentos.backends.ollama", "OllamaBackend"),
    "openai": ("intentos.backends.openai_compat", "OpenAIBackend"),
}


def __getattr__(name: str) -> Any:
    for module, cls in _CLASSES.values():
        if cls == name:
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_backend(spec: str | ModelSpec | None = None, settings: BackendSettings | None = None) -> Backend:
    """The backend for `spec` (None: `settings.spec` when settings are given, else `default_model_spec()`).

    Without `settings` they are loaded for the spec (`load_backend_settings`). Nothing is loaded
    or contacted yet: a llama.cpp model loads on the first generate(), servers are asked on use.
    """
    if spec is None:
        spec = settings.spec if settings is not None else default_model_spec()
    parsed = parse_spec(spec)
    if settings is None:
        settings = load_backend_settings(parsed)
    module, cls = _CLASSES[parsed.kind]
    return getattr(importlib.import_module(module), cls)(parsed, settings)


def available_backends() -> list[str]:
    """Specs for a model picker: the default model first, then every spec named under `models:` in the config."""
    return configured_specs()
