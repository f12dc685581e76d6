"""llama.cpp in-process: a GGUF file loaded by llama-cpp-python, no server.

A model is loaded lazily on the first generate() and cached process-wide per
(path, n_ctx, n_gpu_layers, n_threads), so many backends (and threads) share one copy;
generations on one loaded model are serialised by its lock. With a schema, decoding is
constrained by a llama.cpp grammar compiled from the JSON schema (cached by schema hash);
where llama.cpp's converter cannot express the schema, any JSON object is enforced instead. The
grammar is asked about the token the model would pick before it filters the whole vocabulary
(`grammar_sampling`): at temperature 0 the same tokens, at about the speed of unconstrained decoding.
Tokens are drafted by looking the last few up in the prompt and checked in one batch
(`prompt_lookup`, `draft_tokens`): a plan copies names and paths from its prompt, and on a CPU a batch
of a few tokens costs about what one does.

The prompt is laid out with the model's own chat template (the GGUF's, as llama-cpp-python's chat
handler would) and tokenized here, so the tokens of its static prefix (the first message, or the
part a `StaticPrefixMessage` marks: role, rules, Function Table) are known. Before generating, the
backend makes sure that prefix is in llama.cpp's KV cache: already there from an earlier call in this
process, else loaded from the disk prompt cache (`prompt_cache`: saved by an earlier process), else
evaluated and saved there. Generation then evaluates only the rest (llama-cpp-python skips the
tokens its state already holds). `last_prompt_cache` says which of these happened.

Threads: the physical cores this process may use (llama.cpp's default is half the logical CPUs,
one thread on a 2-core machine), unless `n_threads` says otherwise.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentos.backends import llamacpp_cpu
from intentos.backends.base import STOPPED, GenerateOptions, Generation, GenerationCancelled, Message, StreamCollector
from intentos.backends.prompt_cache import PromptCache, common_prefix, model_sha256, static_prefix_chars
from intentos.backends.settings import BackendSettings
from intentos.backends.spec import ModelSpec, parse_spec
from intentos.errors import BackendError, IntentosError
from intentos.models.gguf import read_header

if TYPE_CHECKING:
    import llama_cpp


@dataclass
class _Loaded:
    llm: llama_cpp.Llama
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_s: float = 0.0
    grammar_ok: dict[str, bool] = field(default_factory=dict)  # schema hash -> llama.cpp accepted the grammar
    formatter: Any = None  # the chat template as a Jinja2ChatFormatter; False when the model has none
    json_grammar: Any = None  # any JSON object, for schemas llama.cpp cannot convert


@dataclass
class _Prompt:
    """A chat laid out by the model's template and tokenized, with its cacheable prefix."""

    tokens: list[int]
    prefix_len: int  # leading tokens that are the same for every call (0: none known)
    stop: list[str]
    stopping_criteria: Any


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (and within a cgroup CPU quota)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    count = len(cores) or 1
    try:  # a container limited to N CPUs' worth of time (cgroup v2) gains nothing from more threads
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


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
        # How the last prompt's static prefix got into llama.cpp's KV cache: source is "disk" (loaded from the prompt
        # cache), "saved" (evaluated, then saved there), "evaluated" (evaluated, not saved), "memory" (still there
        # from an earlier call in this process), "none" (no prefix known) or "off" (the disk cache is turned off).
        self.last_prompt_cache: dict[str, Any] = {}
        self.prompt_cache_counts: dict[str, int] = {}

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
            from intentos.backends.grammar_sampling import GrammarCheckedLlama

            llamacpp_cpu.apply()
            start = time.perf_counter()
            kwargs: dict[str, Any] = {"n_ctx": self.n_ctx, "n_gpu_layers": self.settings.n_gpu_layers,
                                      "verbose": False}
            kwargs["n_threads"] = kwargs["n_threads_batch"] = self.settings.n_threads or physical_cores()
            if self.settings.seed is not None:
                kwargs["seed"] = self.settings.seed
            try:
                llm = GrammarCheckedLlama(str(self.path), **kwargs)
            except Exception as exc:
                raise BackendError(f"llama.cpp could not load {self.path}: {exc}") from exc
            loaded = _Loaded(llm=llm, load_s=time.perf_counter() - start)
            _MODELS[key] = loaded
            return loaded

    @functools.cached_property
    def n_ctx(self) -> int:
        """The context window: as set, but no larger than the model was trained with (SmolLM2: 8192), where
        it would only let prompts grow past what the model reads well."""
        try:
            trained = read_header(self.path).context_length
        except (OSError, IntentosError):  # reachable() says what is wrong with the file
            trained = None
        return min(self.settings.n_ctx, trained) if trained else self.settings.n_ctx

    def reset(self) -> None:
        """Forget the evaluated prompt, so the next call evaluates all of it (for benchmarks of time to first token)."""
        loaded = self.load()
        with loaded.lock:
            loaded.llm.reset()

    # -- grammar and prompt layout -----------------------------------------------------------------------------

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

    def _formatter(self, loaded: _Loaded) -> Any:
        """The model's chat template as llama-cpp-python's chat handler builds it, or None when it has none."""
        if loaded.formatter is None:
            llm = loaded.llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                loaded.formatter = False
            else:
                from llama_cpp import llama_chat_format

                eos_id, bos_id = llm.token_eos(), llm.token_bos()
                try:
                    loaded.formatter = llama_chat_format.Jinja2ChatFormatter(
                        template=template,
                        eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
                        bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
                        stop_token_ids=[eos_id])
                except Exception:  # a template jinja cannot compile: llama-cpp-python's own fallback decides
                    loaded.formatter = False
        return loaded.formatter or None

    def _prompt(self, loaded: _Loaded, messages: list[Message], chat: list[dict[str, str]],
                head: bool = False) -> _Prompt | None:
        """The chat laid out and tokenized exactly as llama-cpp-python's chat handler would, or None. Its static
        prefix: the marked part of the first message, or with `head`, all but the last message's text."""
        formatter = self._formatter(loaded)
        if formatter is None:
            return None
        try:
            result = formatter(messages=chat)
        except Exception:  # a template this formatter cannot render (e.g. it refuses a role): the chat handler's turn
            return None
        llm, text, add_bos = loaded.llm, result.prompt, not result.added_special
        tokens = llm.tokenize(text.encode(), add_bos=add_bos, special=True)
        prefix_len, cut = 0, None
        if head:
            start = text.rfind(messages[-1].content) if len(messages) > 1 else -1
            cut = start if start > 0 else None
        elif (where := static_prefix_chars(messages)) is not None:
            index, chars = where
            start = text.find(messages[index].content)
            cut = start + chars if start >= 0 else None
        if cut is not None:
            static = llm.tokenize(text[:cut].encode(), add_bos=add_bos, special=True)
            # The last static token may merge with what follows in another prompt; leaving it out keeps the
            # prefix (and its cache key) the same for every intent.
            prefix_len = max(0, min(common_prefix(static, tokens), len(static) - 1))
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return _Prompt(tokens=tokens, prefix_len=prefix_len, stop=stop, stopping_criteria=result.stopping_criteria)

    def count_prompt_tokens(self, messages: list[dict[str, str]], loaded: _Loaded | None = None) -> int:
        """Prompt tokens as the chat template lays them out (the stream reports no usage)."""
        loaded = loaded or self.load()
        prompt = self._prompt(loaded, [Message(role=m["role"], content=m["content"]) for m in messages], messages)
        if prompt is not None:
            return len(prompt.tokens)
        text = "\n".join(m["content"] for m in messages)
        return len(loaded.llm.tokenize(text.encode(), add_bos=True, special=False))

    # -- the prompt cache --------------------------------------------------------------------------------------------

    def prompt_cache(self) -> PromptCache | None:
        """The disk prompt cache these settings ask for, or None when it is turned off."""
        s = self.settings
        if not s.prompt_cache:
            return None
        directory = Path(s.prompt_cache_dir).expanduser() if s.prompt_cache_dir else None
        return PromptCache(directory, max_files=s.prompt_cache_max_files, max_bytes=s.prompt_cache_max_mib * 2**20)

    def cache_signature(self, loaded: _Loaded, cache: PromptCache) -> dict[str, Any]:
        """Everything a saved state depends on besides the prefix tokens (all part of the file's key)."""
        import llama_cpp

        params = loaded.llm.context_params
        return {"model_sha256": model_sha256(self.path, cache.directory), "llama_cpp": llama_cpp.__version__,
                "n_ctx": loaded.llm.n_ctx(), "type_k": int(params.type_k), "type_v": int(params.type_v),
                "flash_attn": int(params.flash_attn_type), "swa_full": bool(params.swa_full),
                "n_gpu_layers": self.settings.n_gpu_layers}

    @staticmethod
    def _save_sequence(llm: llama_cpp.Llama) -> memoryview:
        import llama_cpp

        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        if not 0 < written <= size:
            raise RuntimeError(f"llama.cpp copied {written} of {size} state bytes")
        return memoryview(buffer).cast("B")[:written]

    @staticmethod
    def _restore_sequence(llm: llama_cpp.Llama, state: bytearray, tokens: list[int]) -> bool:
        """Put a saved sequence state in place of the KV cache; False (and an empty cache) when llama.cpp refuses."""
        import llama_cpp

        llm._ctx.kv_cache_seq_rm(0, 0, -1)
        llm.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(state)).from_buffer(state)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(state), 0) != len(state):
            llm._ctx.kv_cache_seq_rm(0, 0, -1)
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        llm._requires_eval = True  # the logits are not restored: generate() evaluates at least one token
        return True

    def _prime_prefix(self, loaded: _Loaded, prompt: _Prompt, options: GenerateOptions) -> dict[str, Any]:
        """Get the prompt's static prefix into the KV cache: from memory, from disk, or evaluated (and saved)."""
        llm, tokens, n = loaded.llm, prompt.tokens, prompt.prefix_len
        have = common_prefix(llm.input_ids[: llm.n_tokens], tokens) if llm.n_tokens else 0
        info: dict[str, Any] = {"source": "memory" if have else "none", "prefix_tokens": n,
                                "cached_prefix_tokens": min(have, n), "reused_tokens": have,
                                "prompt_tokens": len(tokens)}
        cache = self.prompt_cache()
        if cache is None:
            info["source"] = "memory" if have else "off"
            return info
        if have >= n or n < self.settings.prompt_cache_min_tokens or len(tokens) >= llm.n_ctx():
            return info  # already there, not worth a file, or a prompt generate() will refuse anyway
        prefix = tokens[:n]
        try:
            signature = self.cache_signature(loaded, cache)
            start = time.perf_counter()
            state, found = cache.load(signature, prefix)
            info["file"] = str(found.path)
            if state is not None:
                if self._restore_sequence(llm, state, prefix):
                    info.update(source="disk", cached_prefix_tokens=n, reused_tokens=n,
                                load_s=time.perf_counter() - start, file_bytes=found.bytes)
                    return info
                cache.discard(found.path)
                info["why"], have = "llama.cpp refused the saved state; removed", 0
            elif found.why != "no file":
                info["why"] = found.why
        except Exception as exc:  # the cache must never cost the answer
            signature, info["why"] = None, f"prompt cache unusable: {type(exc).__name__}: {exc}"
            if llm.n_tokens < have:  # a restore was under way: what memory held is gone
                have = 0
        # A miss: evaluate the prefix (after what memory already holds), then save the state as it is now.
        if have and llm._ctx.kv_cache_seq_rm(-1, have, -1):
            llm.n_tokens = have
        else:
            llm.reset()
            have = 0
        start = time.perf_counter()
        for i in range(have, n, llm.n_batch):
            if options.cancelled is not None and options.cancelled():
                raise GenerationCancelled("cancelled while reading the prompt")
            llm.eval(prefix[i:min(n, i + llm.n_batch)])
        info.update(source="evaluated", cached_prefix_tokens=have, reused_tokens=have,
                    eval_s=time.perf_counter() - start)
        if signature is not None:
            try:
                saved = cache.save(signature, prefix, self._save_sequence(llm),
                                   {"spec": self.spec, "model_path": str(self.path),
                                    "model_name": llm.metadata.get("general.name")})
                info.update(save_s=saved.seconds, file=str(saved.path))
                if saved.ok:
                    info.update(source="saved", file_bytes=saved.bytes)
                else:
                    info["why"] = saved.why
            except Exception as exc:
                info["why"] = f"prompt state not saved: {type(exc).__name__}: {exc}"
        return info

    # -- generation --------------------------------------------------------------------------------------------

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        import llama_cpp

        options = options or GenerateOptions(max_tokens=self.settings.max_tokens, seed=self.settings.seed)
        seed = options.seed if options.seed is not None else self.settings.seed
        loaded = self.load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        kwargs: dict[str, Any] = {"max_tokens": options.max_tokens, "temperature": options.temperature,
                                  "repeat_penalty": options.repeat_penalty, "stream": True}
        if seed is not None:
            kwargs["seed"] = seed
        structured, json_object = "none", False
        if schema is not None:
            grammar = self._grammar(loaded, schema)
            if grammar is not None:
                kwargs["grammar"], structured = grammar, "grammar"
            else:
                structured, json_object = "json_object", True

        finish: str | None = None
        timings: dict[str, float] = {}
        with loaded.lock:
            loaded.llm.set_drafting(self.settings.draft_tokens)  # a model is shared by backends of other settings
            collected = StreamCollector(options)
            prompt = self._prompt(loaded, messages, chat)
            try:
                if prompt is None:  # no usable chat template: llama-cpp-python's chat handler lays the prompt out
                    if json_object:
                        kwargs["response_format"] = {"type": "json_object"}
                    self.last_prompt_cache = {"source": "none", "prefix_tokens": 0, "cached_prefix_tokens": 0}
                    stream = loaded.llm.create_chat_completion(chat, **kwargs)
                else:
                    self.last_prompt_cache = info = self._prime_prefix(loaded, prompt, options)
                    self._count(info["source"])
                    timings = {f"prefix_{k}": round(float(info[k]), 6) for k in ("load_s", "eval_s", "save_s")
                               if k in info}
                    if json_object:
                        if loaded.json_grammar is None:
                            loaded.json_grammar = llama_cpp.LlamaGrammar.from_string(
                                llama_cpp.llama_grammar.JSON_GBNF, verbose=False)
                        kwargs["grammar"] = loaded.json_grammar
                    stream = loaded.llm.create_completion(prompt=prompt.tokens, stop=prompt.stop,
                                                          stopping_criteria=prompt.stopping_criteria, **kwargs)
            except GenerationCancelled:
                raise
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
                    piece = choice.get("text") if prompt is not None else (choice.get("delta") or {}).get("content")
                    if collected.add(piece):
                        finish = STOPPED
                        break
            finally:
                stream.close()
            timings.update(loaded.llm.draft_counts())
            total = collected.elapsed()
            text = collected.text
            prompt_tokens = len(prompt.tokens) if prompt is not None else self.count_prompt_tokens(chat, loaded)
            completion_tokens = len(loaded.llm.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
        return Generation(text=text, model=self.spec, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, ttft_s=collected.ttft_s, total_s=total,
                          structured=structured, finish_reason=finish, server_timings=timings)

    def weigh(self, messages: list[Message], answers: list[str]) -> dict[str, float] | None:
        """Each answer's log-probability as the reply's first token, read from the model's logits for that token
        (its spellings "yes", "Yes", " yes" summed); None without a chat template. The prompt shares the KV
        cache like any other: only what differs from the last prompt is read."""
        import llama_cpp
        import numpy as np

        loaded = self.load()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        rows: list[np.ndarray] = []

        def keep(_ids: Any, scores: Any) -> Any:
            if not rows:
                rows.append(np.array(scores, dtype=np.float64, copy=True))
            return scores

        with loaded.lock:
            # All but the question is the same for every question a judge asks: kept like a plan's static prefix
            # (on disk), so a weighing between two plans reads the question only, not the judge's whole prompt.
            prompt = self._prompt(loaded, messages, chat, head=True)
            if prompt is None:
                return None
            self._prime_prefix(loaded, prompt, GenerateOptions(max_tokens=1))
            try:
                loaded.llm.create_completion(prompt=prompt.tokens, max_tokens=1, temperature=0.0,
                                             logits_processor=llama_cpp.LogitsProcessorList([keep]))
            except Exception as exc:  # e.g. the prompt does not fit the context window
                raise BackendError(f"llama.cpp could not weigh answers ({self.spec}): {exc}") from exc
            if not rows:
                return None
            logits = rows[0]
            top = float(logits.max())
            log_total = top + math.log(float(np.exp(logits - top).sum()))
            weights: dict[str, float] = {}
            for answer in answers:
                firsts = {toks[0] for form in {answer, answer.capitalize(), f" {answer}"}
                          if (toks := loaded.llm.tokenize(form.encode(), add_bos=False, special=False))}
                weights[answer] = math.log(sum(math.exp(float(logits[t]) - log_total) for t in firsts) or 1e-300)
        return weights

    def _count(self, source: str) -> None:
        self.prompt_cache_counts[source] = self.prompt_cache_counts.get(source, 0) + 1

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
            "n_ctx": self.n_ctx,
            "n_threads": loaded.llm.n_threads if loaded else (self.settings.n_threads or physical_cores()),
            "gpu_offload_supported": gpu,
            "gpu_layers_effective": self.settings.n_gpu_layers if gpu else 0,
            "llama_cpp_version": llama_cpp.__version__,
            "loaded": loaded is not None,
            "prompt_cache": str(cache.directory) if (cache := self.prompt_cache()) is not None else None,
        }
        if loaded is not None:
            info["load_s"] = round(loaded.load_s, 3)
            info["model_name"] = loaded.llm.metadata.get("general.name")
        return info
