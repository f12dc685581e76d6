"""Sampling under a grammar that asks the grammar about the model's own choice first.

llama-cpp-python samples under a grammar by running llama.cpp's grammar sampler over the whole
vocabulary (152k tokens for Qwen) at every step, then sampling among the survivors. The model's own
choice is nearly always allowed in a well-formed plan, so here the token is chosen first as if there
were no grammar and only that one token is checked; only when the grammar rejects it is the
vocabulary filtered. This is the check llama.cpp's own `common_sampler` (its CLI and server) makes in
C++ before falling back to grammar-first sampling.

- At temperature 0 the tokens are the ones the whole-vocabulary filter picks: the best allowed token is
  the best token when that is allowed, and else the best allowed among the model's best few when any is
  (the whole vocabulary is filtered only when none is).
- With a temperature the model's own distribution is sampled and the token kept when allowed, else the
  distribution over allowed tokens is sampled (as llama.cpp samples; not the very same distribution as
  filtering first, which renormalises over the allowed tokens at every step).

On 2 CPU cores this removes most of the gap between free and grammar decoding (bench_backend.py:
Qwen2.5-Coder-1.5B 29 tok/s instead of 12 with the workflow grammar). `GrammarCheckedLlama` is
llama-cpp-python's `Llama` with this sampler put in where it applies (a grammar, no penalties, no
logits processors); every other call is theirs, unchanged.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np

from intentos.backends.prompt_lookup import DraftingLlama

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
_FEW = 32  # of the model's best tokens, checked before the whole vocabulary when the best one is rejected
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class GrammarCheckedSampler:
    """A token the grammar allows, in the shape of llama-cpp-python's sampler (`sample`, `close`).

    `free` is llama-cpp-python's sampler chain for the same options without the grammar; `greedy`: that
    chain takes the best token (temperature 0)."""

    def __init__(self, model: Any, grammar: llama_cpp.LlamaGrammar, free: Any, greedy: bool) -> None:
        vocab = model.vocab
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not self._grammar:
            raise ValueError("llama.cpp rejected the grammar")
        self._free = free
        self._greedy = greedy
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self._eos = int(llama_cpp.llama_vocab_eos(vocab))
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self._all: np.ndarray | None = None  # the whole vocabulary, made on the first rejection
        self.checked = 0  # steps decided by checking one token
        self.few = 0  # steps decided among the model's best few tokens
        self.filtered = 0  # steps that filtered the whole vocabulary

    def _apply(self, sampler: Any, data: np.ndarray) -> int:
        array = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(data), selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return int(array.selected)

    def _allowed(self, token: int, logit: float) -> bool:
        self._one[0] = (token, logit, 0.0)
        self._apply(self._grammar, self._one)
        return bool(np.isfinite(self._one[0]["logit"]))

    def sample(self, ctx: Any, idx: int = -1) -> int:
        pointer = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        token = int(np.argmax(logits)) if self._greedy else int(self._free.sample(ctx, idx))
        if self._allowed(token, float(logits[token])):
            self.checked += 1
        else:
            token = self._best_few(logits) if self._greedy else None
            if token is None:
                token = self._filtered(logits)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        return token

    def _best_few(self, logits: np.ndarray) -> int | None:
        """The best allowed token among the model's best few: then the best allowed of all."""
        top = np.argpartition(logits, -_FEW)[-_FEW:]
        few = np.zeros(_FEW, dtype=_TOKEN_DATA)
        few["id"], few["logit"] = top, logits[top]
        self._apply(self._grammar, few)
        if not np.isfinite(few["logit"]).any():
            return None
        self.few += 1
        return int(few["id"][np.argmax(few["logit"])])

    def _filtered(self, logits: np.ndarray) -> int:
        """The token the free chain picks among the allowed ones (the grammar applied to the whole vocabulary)."""
        self.filtered += 1
        if self._all is None:
            self._all = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
        self._all["id"] = np.arange(self._n_vocab, dtype=np.int32)  # the chain may reorder the array
        self._all["logit"] = logits
        self._all["p"] = 0.0
        self._apply(self._grammar, self._all)
        if not np.isfinite(self._all["logit"]).any():
            return self._eos  # nothing allowed: the grammar is complete and the model wanted more
        if self._greedy:
            return int(self._all["id"][np.argmax(self._all["logit"])])
        return int(self._all["id"][self._apply(self._free.sampler, self._all)])

    def close(self) -> None:
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:
        self.close()


class GrammarCheckedLlama(DraftingLlama):
    """llama-cpp-python's Llama, sampling under a grammar with `GrammarCheckedSampler` (and drafting by prompt
    lookup when asked: `DraftingLlama`)."""

    last_sampler: GrammarCheckedSampler | None = None
    check_first = True  # False: llama-cpp-python's own sampling throughout (benchmarks compare the two)

    def _init_sampler(self, *args: Any, **kwargs: Any) -> Any:
        grammar = kwargs.get("grammar")
        plain = (self.check_first and kwargs.get("logits_processor") is None and not args
                 and kwargs.get("repeat_penalty", 1.0) == 1.0 and not kwargs.get("frequency_penalty")
                 and not kwargs.get("presence_penalty") and not kwargs.get("mirostat_mode"))
        if grammar is None or not plain:
            return super()._init_sampler(*args, **kwargs)
        try:
            free = super()._init_sampler(*args, **{**kwargs, "grammar": None})
            self.last_sampler = GrammarCheckedSampler(self._model, grammar, free, greedy=kwargs.get("temp") == 0.0)
        except (AttributeError, TypeError, ValueError):  # another llama-cpp-python's internals: its own sampling
            return super()._init_sampler(*args, **kwargs)
        return self.last_sampler
