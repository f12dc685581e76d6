"""Speculative decoding with drafts looked up in the prompt, for llama-cpp-python on a CPU.

A plan copies much of its text from its prompt: function and argument names from the table, names and
paths found for the request, `${state.result.field}` from the examples, its own earlier states. So the
tokens that followed the latest earlier occurrence of the last few tokens are a good guess at what comes
next (prompt lookup decoding). The model evaluates the token it just chose together with those drafts in
one batch and keeps drafts only as far as its own choice at each position agrees: the text is what plain
decoding produces (at temperature 0 the same tokens; with a temperature each token is still drawn from
the model's distribution given the tokens before it). On a CPU a batch of a few tokens costs little more
than one token, since reading the weights dominates, so every accepted draft is a decode step saved.

llama-cpp-python runs a draft model only for a `Llama` made with `logits_all=True`, which keeps a row of
logits for every position of the context in Python (600 KB a row for Qwen's vocabulary: 7 GB at n_ctx
12288) and computes the output layer for every prompt token too. `DraftingLlama.eval` instead asks
llama.cpp for the logits of every position only in the short batches that generation evaluates (the
chosen token and its drafts) and keeps none in Python: a sampler reads them from llama.cpp's context by
position (`llama_get_logits_ith`), as `GrammarCheckedSampler` does.

The backend drafts only when `draft_tokens` says so. A batch is computed with other kernels than a single
token, so the logits differ in the last bits and at a near tie the model's choice can too: 2 of 6 replayed
planner replies of Qwen2.5-Coder-1.5B came out otherwise than plain decoding's (README, "Speed").
"""

from __future__ import annotations

from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp.llama_speculative import LlamaDraftModel

# Runs of last tokens looked up, longest first. Drafts after a run of 1-3 tokens (JSON such as '"}, {"'
# recurs everywhere) were right about a quarter of the time, after 6 tokens three quarters; a batch of 9
# tokens costs about three single steps on 2 cores, so only long runs pay.
MAX_NGRAM = 8
MIN_NGRAM = 4


class PromptLookup(LlamaDraftModel):
    """Drafts: the tokens that followed the latest earlier occurrence of the longest run of last tokens.

    `proposed` and `accepted` count draft tokens over the calls so far (a call sees how many of the last
    call's drafts the model kept: the tokens added since, less the one it chose itself)."""

    def __init__(self, num_pred_tokens: int) -> None:
        self.num_pred_tokens = num_pred_tokens
        self.proposed = 0
        self.accepted = 0
        self._last: tuple[int, int] | None = None  # (tokens seen, tokens drafted) at the last call

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        ids = np.asarray(input_ids)
        n = len(ids)
        if self._last is not None and n > self._last[0]:
            self.accepted += min(n - self._last[0] - 1, self._last[1])
        drafts = self._lookup(ids)
        self._last = (n, len(drafts))
        self.proposed += len(drafts)
        return drafts

    def _lookup(self, ids: np.ndarray) -> npt.NDArray[np.intc]:
        for size in range(min(MAX_NGRAM, len(ids) - 1), MIN_NGRAM - 1, -1):
            # Windows that end before the last token, so the run does not find itself.
            windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], size)
            hits = np.flatnonzero((windows == ids[-size:]).all(axis=1))
            if len(hits):
                start = int(hits[-1]) + size
                return ids[start:start + self.num_pred_tokens].astype(np.intc)
        return np.array([], dtype=np.intc)


class DraftingLlama(llama_cpp.Llama):
    """llama-cpp-python's Llama that can draft by prompt lookup without keeping every position's logits."""

    def set_drafting(self, tokens: int) -> None:
        """Draft up to `tokens` tokens a step from now on (0: plain decoding, one token a step)."""
        self.draft_model = PromptLookup(tokens) if tokens > 0 else None

    def draft_counts(self) -> dict[str, int]:
        """Draft tokens proposed and accepted since `set_drafting`; none when not drafting."""
        lookup = self.draft_model
        if not isinstance(lookup, PromptLookup):
            return {}
        return {"drafts_proposed": lookup.proposed, "drafts_accepted": lookup.accepted}

    def eval(self, tokens: Any) -> None:
        lookup = self.draft_model
        # A batch longer than a chosen token and its drafts is a prompt: logits for its last position only.
        if not isinstance(lookup, PromptLookup) or self._logits_all \
                or not 1 < len(tokens) <= lookup.num_pred_tokens + 1:
            super().eval(tokens)
            return
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        self._batch.set_batch(batch=tokens, n_past=self.n_tokens, logits_all=True)
        self._ctx.decode(self._batch)
        self.input_ids[self.n_tokens:self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self._requires_eval = False
