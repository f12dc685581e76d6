"""llama.cpp in-process: a GGUF file loaded by llama-cpp-python, no server.

A model is loaded lazily on the first generate() and cached process-wide per
(path, n_ctx, n_gpu_layers, n_threads), so many backends (and threads) share one copy;
generations on one loaded model are serialised by its lock. With a schema, decoding is
constrained by a llama.cpp grammar compiled from the JSON schema (cached by schema hash);
where llama.cpp's converter cannot express the schema, any JSON object is enforced instead.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentos.backends import llamacpp_cpu
from intentos.backends.base import GenerateOptions, Generation, Message, StreamCollector
from intentos.backends.settings import BackendSettings
from intentos.backends.spec import ModelSpec, parse_spec
from intentos.errors import BackendError

if TYPE_CHECKING:
    import llama_cpp


@dataclass
class _Loaded:
    llm: llama_cpp.Llama
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_s: float = 0.0
    grammar_ok: dict[str, bool] = field(default_factory=dict)  # schema hash -> llama.cpp accepted the grammar
    formatter: Any = None


_LOAD_LOCK = threading.Lock()
_MODELS: dict[tuple[str, int, int, int | None], _Loaded] = {}
_GRAMMAR_LOCK = threading.Lock()
_GRAMMARS: dict[str, Any] = {}  # schema hash -> LlamaGrammar, or the converter's error message (str)
_GRAMMAR_CACHE_MAX = 256


@atexit.register
def _close_models() -> None:
    """Free the cached models while llama.cpp is still loaded (a late __del__ at exit finds it gone)."""
    for loaded in _MODELS.values():
        try:
            loaded.llm.close()
        except Exception:
            pass
    _MODELS.clear()


def schema_hash(schema: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def compile_grammar(schema: dict[str, Any]) -> tuple[str, Any]:
    """(hash, LlamaGrammar) for a JSON schema, or (hash, error message) when llama.cpp's converter rejects it."""
    import llama_cpp

    key = schema_hash(schema)
    with _GRAMMAR_LOCK:
        if key in _GRAMMARS:
            return key, _GRAMMARS[key]
    try:
        grammar: Any = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # the converter raises ValueError, AssertionError, KeyError...
        grammar = f"{type(exc).__name__}: {exc}"
    with _GRAMMAR_LOCK:
        if len(_GRAMMARS) >= _GRAMMAR_CACHE_MAX:
            _GRAMMARS.clear()
        _GRAMMARS[key] = grammar
    return key, grammar


class LlamaCppBackend:
    """A GGUF model run in this process by llama.cpp."""

    def __init__(self, spec: str | ModelSpec = "llamacpp:smollm2", settings: BackendSettings | None = None) -> None:
        parsed = parse_spec(spec)
        if parsed.kind != "llamacpp":
            raise BackendError(f"LlamaCppBackend needs a llamacpp: spec, not {parsed}")
        self.model_spec = parsed
        self.spec = str(parsed)
        self.settings = settings or BackendSettings()
        self.path = parsed.model_path()
        self.last_structured_error: str | None = None

    # -- loading ---------------------------------------------------------------------------------------------

    @property
    def cache_key(self) -> tuple[str, int, int, int | None]:
        s = self.settings
        return (str(self.path.resolve()), s.n_ctx, s.n_gpu_layers, s.n_threads)

    def load(self) -> _Loaded:
        """Load the model (once per process and key) and return it."""
        key = self.cache_key
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        with _LOAD_LOCK:
            loaded = _MODELS.get(key)
            if loaded is not None:
                return loaded
            ok, why = self.reachable()
            if not ok:
                raise BackendError(why)
            import llama_cpp

            llamacpp_cpu.apply()
            start = time.perf_counter()
            kwargs: dict[str, Any] = {"n_ctx": self.settings.n_ctx, "n_gpu_layers": self.settings.n_gpu_layers,
                                      "verbose": False}
            if self.settings.n_threads is not None:
                kwargs["n_threads"] = kwargs["n_threads_batch"] = self.settings.n_threads
            if self.settings.seed is not None:
                kwargs["seed"] = self.settings.seed
            try:
                llm = llama_cpp.Llama(str(self.path), **kwargs)
            except Exception as exc:
                raise BackendError(f"llama.cpp could not load {self.path}: {exc}") from exc
            loaded = _Loaded(llm=llm, load_s=time.perf_counter() - start)
            _MODELS[key] = loaded
            return loaded

    def reset(self) -> None:
        """Forget the evaluated prompt, so the next call evaluates all of it (for benchmarks of time to first token)."""
        loaded = self.load()
        with loaded.lock:
            loaded.llm.reset()

    # -- generation --------------------------------------------------------------------------------------------

    def _grammar(self, loaded: _Loaded, schema: dict[str, Any]) -> Any:
        """A LlamaGrammar llama.cpp accepts for this model, or None (then fall back to any JSON object)."""
        import llama_cpp

        key, grammar = compile_grammar(schema)
        if isinstance(grammar, str):
            self.last_structured_error = grammar
            return None
        if key not in loaded.grammar_ok:
            # The converter's output is parsed by llama.cpp only when sampling starts; a grammar it rejects
            # gives a NULL sampler there, so try it once here where a failure can still fall back.
            sampler = llama_cpp.llama_sampler_init_grammar(
                loaded.llm._model.vocab, grammar._grammar.encode(), grammar._root.encode())
            loaded.grammar_ok[key] = bool(sampler)
            if sampler:
                llama_cpp.llama_sampler_free(sampler)
        if not loaded.grammar_ok[key]:
            self.last_structured_error = "llama.cpp rejected the grammar converted from the schema"
            return None
        return grammar

    def count_prompt_tokens(self, messages: list[dict[str, str]], loaded: _Loaded | None = None) -> int:
        """Prompt tokens as the chat template lays them out (the stream reports no usage)."""
        loaded = loaded or self.load()
        llm = loaded.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            if loaded.formatter is None:
                from llama_cpp import llama_chat_format

                eos_id, bos_id = llm.token_eos(), llm.token_bos()
                loaded.formatter = llama_chat_format.Jinja2ChatFormatter(
                    template=template,
                    eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
                    bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
                    stop_token_ids=[eos_id])
            try:
                result = loaded.formatter(messages=messages)
                return len(llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True))
            except Exception:  # a template this formatter cannot render: count the text alone
                pass
        text = "\n".join(m["content"] for m in messages)
        return len(llm.tokenize(text.encode(), add_bos=True, special=False))

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        options = options or GenerateOptions(max_tokens=self.settings.max_tokens, seed=self.settings.seed)
        seed = options.seed if options.seed is not None else self.settings.seed
        loaded = self.load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        kwargs: dict[str, Any] = {"max_tokens": options.max_tokens, "temperature": options.temperature,
                                  "repeat_penalty": options.repeat_penalty, "stream": True}
        if seed is not None:
            kwargs["seed"] = seed
        structured = "none"
        if schema is not None:
            grammar = self._grammar(loaded, schema)
            if grammar is not None:
                kwargs["grammar"], structured = grammar, "grammar"
            else:
                kwargs["response_format"], structured = {"type": "json_object"}, "json_object"

        finish: str | None = None
        with loaded.lock:
            collected = StreamCollector(options)
            try:
                stream = loaded.llm.create_chat_completion(chat, **kwargs)
            except Exception as exc:
                raise BackendError(f"llama.cpp could not start generating ({self.spec}): {exc}") from exc
            try:
                while True:
                    try:
                        chunk = next(stream)
                    except StopIteration:
                        break
                    except Exception as exc:  # e.g. the prompt does not fit the context window
                        raise BackendError(f"llama.cpp generation failed ({self.spec}): {exc}") from exc
                    choice = chunk["choices"][0] if chunk.get("choices") else {}
                    finish = choice.get("finish_reason") or finish
                    collected.add((choice.get("delta") or {}).get("content"))
            finally:
                stream.close()
            total = collected.elapsed()
            text = collected.text
            prompt_tokens = self.count_prompt_tokens(chat, loaded)
            completion_tokens = len(loaded.llm.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
        return Generation(text=text, model=self.spec, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, ttft_s=collected.ttft_s, total_s=total,
                          structured=structured, finish_reason=finish)

    # -- introspection ---------------------------------------------------------------------------------------------

    def reachable(self) -> tuple[bool, str]:
        path: Path = self.path
        if not path.is_file():
            return False, f"no model file at {path}"
        return True, f"{path} ({path.stat().st_size} bytes)"

    def describe(self) -> dict[str, Any]:
        import llama_cpp

        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        loaded = _MODELS.get(self.cache_key)
        info: dict[str, Any] = {
            "kind": "llamacpp",
            "spec": self.spec,
            "path": str(self.path),
            "size_bytes": self.path.stat().st_size if self.path.is_file() else None,
            "n_gpu_layers": self.settings.n_gpu_layers,
            "n_ctx": self.settings.n_ctx,
            "n_threads": loaded.llm.n_threads if loaded else self.settings.n_threads,
            "gpu_offload_supported": gpu,
            "gpu_layers_effective": self.settings.n_gpu_layers if gpu else 0,
            "llama_cpp_version": llama_cpp.__version__,
            "loaded": loaded is not None,
        }
        if loaded is not None:
            info["load_s"] = round(loaded.load_s, 3)
            info["model_name"] = loaded.llm.metadata.get("general.name")
        return info
