"""Rank the Function Table by relevance to an intent (BM25), so a small model sees a short table.

A 135M-parameter model with a 4k context cannot usefully read fifty signatures, and a
grammar over fifty call schemas is slow to build and to sample. Ranking keeps the prompt
and the schema to the functions the intent is about. Each function is indexed as a
small document: its app's name and description, its verb, its description and its
parameter names. The agent's own functions (say, ask, refuse, check) are always kept:
they are how a plan answers, branches, asks or declines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from intentos.function import Function
from intentos.table import FunctionTable

ALWAYS = ("agent.say", "agent.ask", "agent.refuse", "agent.check")


@cache
def _stemmer() -> Any:
    import Stemmer  # imported on first use: bm25s pulls in scipy, too slow for every CLI start

    return Stemmer.Stemmer("english")


@dataclass(frozen=True)
class Ranked:
    name: str
    score: float


def _document(fn: Function, app_description: str) -> str:
    words = re.sub(r"[_.]", " ", f"{fn.app} {fn.verb}")
    params = " ".join(re.sub(r"_", " ", p) for p in fn.params.model_fields)
    return f"{words} {words} {app_description} {fn.description} {params}"


def stemmed_words(text: str) -> set[str]:
    """The stemmed content words of a text (English stop words dropped)."""
    tokens = _tokens([text])
    vocab = {i: w for w, i in tokens.vocab.items()}
    return {vocab[i] for i in tokens.ids[0]}


def _tokens(texts: list[str]) -> Any:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)


class FunctionRanker:
    """A BM25 index over one Function Table."""

    def __init__(self, table: FunctionTable) -> None:
        self.table = table
        self.names = [fn.name for fn in table]
        docs = [_document(fn, table.apps[fn.app].description) for fn in table]
        import bm25s

        self._index = bm25s.BM25()
        self._index.index(_tokens(docs), show_progress=False)

    def rank(self, intent: str) -> list[Ranked]:
        """Every function, best match first (ties keep table order)."""
        words = list(stemmed_words(intent))
        scores = self._index.get_scores(words) if words else [0.0] * len(self.names)
        order = sorted(range(len(self.names)), key=lambda i: -float(scores[i]))
        return [Ranked(self.names[i], round(float(scores[i]), 4)) for i in order]

    def top(self, intent: str, k: int) -> tuple[list[str], list[Ranked]]:
        """The names of the k best functions plus the always-kept ones, and the ranking used."""
        ranking = self.rank(intent)
        keep = [r.name for r in ranking[:k] if r.score > 0]
        keep += [n for n in ALWAYS if n in self.table]
        return list(dict.fromkeys(keep)), ranking
