"""Model settings: which model to use and how to run it.

Precedence, lowest to highest (a later source overrides an earlier one, field by field):

1. the defaults of `BackendSettings` below;
2. the `models:` section of the YAML config file (`intentos.configfile`, at `intentos.locations.config_file()`):
   first `models.defaults`, then the entry whose key is the model spec in use::

       model: ollama:qwen2.5:7b          # the default model (top-level key)
       models:
         defaults: {n_ctx: 12288, request_timeout: 120}
         "ollama:qwen2.5:7b": {n_ctx: 8192}
         "llamacpp:smollm2": {n_gpu_layers: 0}
         "openai:local@http://127.0.0.1:8000/v1": {max_tokens: 512}

3. environment variables: INTENTOS_N_GPU_LAYERS (`all` = -1), INTENTOS_N_CTX,
   INTENTOS_N_THREADS (`auto` = None), INTENTOS_PROMPT_CACHE (0/1), OLLAMA_HOST, OPENAI_BASE_URL, OPENAI_API_KEY;
4. explicit overrides (command-line flags), passed as a dict; None values are ignored.

The model itself is chosen by `default_model_spec()`: the flag, else $INTENTOS_MODEL, else the
config file's top-level `model:`, else `DEFAULT_SPEC` (Qwen2.5-Coder-1.5B-Instruct).
A server URL inside a spec (`openai:NAME@URL`, `ollama:NAME@URL`) beats `openai_base_url` / `ollama_host`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from intentos.backends.spec import DEFAULT_SPEC, ModelSpec, parse_spec
from intentos.configfile import ConfigFile, read_config
from intentos.errors import BackendError

# environment variable -> settings field
ENV_VARS: dict[str, str] = {
    "INTENTOS_N_GPU_LAYERS": "n_gpu_layers",
    "INTENTOS_N_CTX": "n_ctx",
    "INTENTOS_N_THREADS": "n_threads",
    "INTENTOS_PROMPT_CACHE": "prompt_cache",
    "INTENTOS_DRAFT_TOKENS": "draft_tokens",
    "OLLAMA_HOST": "ollama_host",
    "OPENAI_BASE_URL": "openai_base_url",
    "OPENAI_API_KEY": "openai_api_key",
}
DEFAULTS_KEY = "defaults"


class BackendSettings(BaseModel):
    """How to run a model. Backends ignore the fields that do not apply to them."""

    spec: str = Field(DEFAULT_SPEC, description="the model spec these settings were resolved for")
    n_gpu_layers: int = Field(0, ge=-1, description="layers offloaded to the GPU (llama.cpp); -1 = all")
    # 12288: the planner's prompt (rules and the whole Function Table, about 4.7k tokens and cached; three
    # examples, what grounding found, the request) runs to about 6.5k tokens, and a repair turn and the reply
    # come on top. A model trained on a shorter window gets that one (SmolLM2: 8192).
    n_ctx: int = Field(12288, ge=16, description="context window in tokens (llama.cpp)")
    n_threads: int | None = Field(None, ge=1,
                                  description="CPU threads (llama.cpp); None = the physical cores this process may use")
    seed: int | None = Field(0, description="sampling seed when a call gives none")
    # Off by default: checked in a batch, a draft's logits come from other kernels than one token's, so at a
    # near tie the plan can differ from plain decoding's, and the eval figures are plain decoding's.
    draft_tokens: int = Field(0, ge=0, le=32, description="llama.cpp: tokens drafted a step by looking the last "
                              "tokens up in the prompt and checked in one batch (0: one token a step; 10 decoded "
                              "plans a third faster on 2 CPU cores, benchmarks/bench_drafting.py)")
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str | None = Field(None, description="None = api.openai.com")
    openai_api_key: str | None = Field(None, repr=False)
    request_timeout: float = Field(120.0, gt=0, description="seconds to wait for a model server")
    max_tokens: int = Field(768, ge=1, description="completion length when a call gives none")
    prompt_cache: bool = Field(True, description="llama.cpp: keep the state after the prompt's static prefix "
                               "(role, rules, Function Table) on disk, so a new process need not read it again")
    prompt_cache_dir: str | None = Field(None, description="where prompt states go; None = "
                                         "$INTENTOS_HOME/cache/prompts, else $XDG_CACHE_HOME/intentos/prompts")
    prompt_cache_max_files: int = Field(16, ge=1, description="prompt states kept on disk, newest first")
    prompt_cache_max_mib: int = Field(2048, ge=1, description="MiB of prompt states kept on disk, newest first")
    prompt_cache_min_tokens: int = Field(64, ge=1, description="shorter static prefixes are not saved")

    model_config = {"extra": "forbid"}

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for traces and reports."""
        data = self.model_dump()
        data["openai_api_key"] = "set" if self.openai_api_key else None
        return data


def _models_section(config: ConfigFile | None) -> dict[str, Any]:
    """The `models:` mapping, checked: `defaults` and spec keys, each a mapping of valid settings."""
    if config is None:
        return {}
    section = config.section("models")
    for key, value in section.items():
        where = ("models", key)
        if key == "model":
            raise config.error("the default model goes in the top-level `model:` key, not under `models:`", where)
        if key != DEFAULTS_KEY:
            try:
                parse_spec(str(key))
            except BackendError as exc:
                raise config.error(f"`models:` keys are `defaults` or model specs: {exc}", where) from None
        if value is None:
            continue
        if not isinstance(value, dict):
            raise config.error(f"models.{key} must be a mapping of settings", where)
        if "spec" in value:
            raise config.error("choose the model with the top-level `model:` key, not `spec:`", where + ("spec",))
        try:
            BackendSettings.model_validate(value)
        except ValidationError as exc:
            raise config.validation_error(exc, where) from None
    return section


def _env_settings() -> dict[str, Any]:
    data: dict[str, Any] = {}
    for var, field in ENV_VARS.items():
        value = os.environ.get(var)
        if value is None or value.strip() == "":
            continue
        value = value.strip()
        if field == "n_gpu_layers" and value.lower() == "all":
            value = "-1"
        if field == "n_threads" and value.lower() == "auto":
            data[field] = None
            continue
        data[field] = value
    try:
        BackendSettings.model_validate(data)
    except ValidationError as exc:
        field_to_var = {f: v for v, f in ENV_VARS.items()}
        problems = [f"{field_to_var.get(str(e['loc'][0]), e['loc'][0])}={data.get(str(e['loc'][0]))!r}: {e['msg']}"
                    for e in exc.errors()]
        raise BackendError("bad model setting in the environment: " + "; ".join(problems)) from None
    return data


def load_backend_settings(spec: str | ModelSpec | None = None,
                          overrides: dict[str, Any] | None = None) -> BackendSettings:
    """Settings for `spec` (None: `default_model_spec()`): defaults < config file < environment < overrides.

    `spec` is the model flag as given (or None); the result's `.spec` is the canonical spec chosen.
    """
    config = read_config()
    parsed = parse_spec(spec) if spec is not None else parse_spec(default_model_spec(config=config))
    section = _models_section(config)
    data: dict[str, Any] = {"spec": str(parsed)}
    data.update(section.get(DEFAULTS_KEY) or {})
    for key, value in section.items():
        if key != DEFAULTS_KEY and str(parse_spec(str(key))) == str(parsed):
            data.update(value or {})
    data.update(_env_settings())
    data.update({k: v for k, v in (overrides or {}).items() if v is not None and k != "spec"})
    try:
        return BackendSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise BackendError(f"bad model setting: {problems}") from None


def default_model_spec(flag: str | None = None, *, config: ConfigFile | None = None) -> str:
    """The model to use: `flag` > $INTENTOS_MODEL > the config file's `model:` > DEFAULT_SPEC (canonical string).

    `config` is the config file when the caller has read it already (else it is read here)."""
    if flag:
        return str(parse_spec(flag))
    if env := os.environ.get("INTENTOS_MODEL", "").strip():
        try:
            return str(parse_spec(env))
        except BackendError as exc:
            raise BackendError(f"INTENTOS_MODEL: {exc}") from None
    config = config if config is not None else read_config()
    if config is not None and (value := config.model) is not None:
        try:
            return str(parse_spec(value))
        except BackendError as exc:
            raise config.error(str(exc), ("model",)) from None
    return DEFAULT_SPEC


def configured_specs() -> list[str]:
    """The default model spec, then every spec named under `models:` in the config file, without repeats."""
    config = read_config()
    specs = [default_model_spec(config=config)]
    for key in _models_section(config):
        if key != DEFAULTS_KEY and (canonical := str(parse_spec(str(key)))) not in specs:
            specs.append(canonical)
    return specs
