"""Greedy decoding under a grammar that asks the grammar about the model's own choice first.

llama-cpp-python samples under a grammar by running llama.cpp's grammar sampler over the whole
vocabulary (152k tokens for Qwen) at every step, then taking the best survivor. At temperature 0 the
best survivor is the model's own best token whenever the grammar accepts it, which it nearly always
does in a well-formed plan; so here that one token is checked first, and only when the grammar
rejects it is the whole vocabulary filtered (the check llama.cpp's own `common_sampler` makes, in
C++, before falling back). The tokens chosen are the same; a step costs one token's check instead of
152k. On 2 CPU cores this was most of the gap between free and grammar decoding (bench_backend.py).

`GreedyGrammarLlama` is llama-cpp-python's `Llama` with this sampler put in where it applies (a
grammar, temperature 0, no penalties, no logits processors); every other call is theirs, unchanged.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
_FEW = 32
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class GreedyGrammarSampler:
    """The best token the grammar allows, in the shape of llama-cpp-python's sampler (`sample`, `close`)."""

    def __init__(self, model: Any, grammar: llama_cpp.LlamaGrammar) -> None:
        vocab = model.vocab
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not self._grammar:
            raise ValueError("llama.cpp rejected the grammar")
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self._eos = int(llama_cpp.llama_vocab_eos(vocab))
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self._all: np.ndarray | None = None  # the whole vocabulary, made on the first rejection
        self.checked = 0  # steps decided by checking one token
        self.few = 0  # steps decided among the model's best few tokens
        self.filtered = 0  # steps that filtered the whole vocabulary

    def _apply(self, data: np.ndarray) -> None:
        array = llama_cpp.llama_token_data_array(
            data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(data), selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(array))

    def sample(self, ctx: Any, idx: int = -1) -> int:
        pointer = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        token = int(np.argmax(logits))
        self._one[0] = (token, logits[token], 0.0)
        self._apply(self._one)
        if np.isfinite(self._one[0]["logit"]):
            self.checked += 1
            llama_cpp.llama_sampler_accept(self._grammar, token)
            return token
        # The best allowed token among the model's top few is the best allowed of all, when there is one.
        top = np.argpartition(logits, -_FEW)[-_FEW:]
        few = np.zeros(_FEW, dtype=_TOKEN_DATA)
        few["id"], few["logit"] = top, logits[top]
        self._apply(few)
        if np.isfinite(few["logit"]).any():
            self.few += 1
            token = int(few["id"][np.argmax(few["logit"])])
        else:
            self.filtered += 1
            if self._all is None:
                self._all = np.zeros(self._n_vocab, dtype=_TOKEN_DATA)
                self._all["id"] = np.arange(self._n_vocab, dtype=np.int32)
            self._all["logit"] = logits
            self._apply(self._all)
            best = int(np.argmax(self._all["logit"]))
            # Nothing allowed can only mean the grammar is complete and the model wanted more: end.
            token = best if np.isfinite(self._all["logit"][best]) else self._eos
        llama_cpp.llama_sampler_accept(self._grammar, token)
        return token

    def close(self) -> None:
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:
        self.close()


class GreedyGrammarLlama(llama_cpp.Llama):
    """llama-cpp-python's Llama, sampling greedily under a grammar with `GreedyGrammarSampler`."""

    last_sampler: GreedyGrammarSampler | None = None
    check_first = True  # False: llama-cpp-python's own sampling throughout (benchmarks compare the two)

    def _init_sampler(self, *args: Any, **kwargs: Any) -> Any:
        grammar = kwargs.get("grammar")
        plain = (self.check_first and kwargs.get("temp") == 0.0 and kwargs.get("logits_processor") is None
                 and kwargs.get("repeat_penalty", 1.0) == 1.0 and not kwargs.get("frequency_penalty")
                 and not kwargs.get("presence_penalty") and not args)
        if grammar is None or not plain:
            return super()._init_sampler(*args, **kwargs)
        self.last_sampler = GreedyGrammarSampler(self._model, grammar)
        return self.last_sampler
