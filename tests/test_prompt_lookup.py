"""Drafting by prompt lookup: the drafts, and generation with them on a real model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from intentos.backends.base import GenerateOptions, Message
from intentos.backends.prompt_lookup import MIN_NGRAM, PromptLookup
from intentos.backends.settings import BackendSettings


def test_drafts_follow_the_latest_earlier_run_of_the_last_tokens() -> None:
    lookup = PromptLookup(3)
    #                    run 1 2 3 4 -> 5 6 7 ...        the same run later -> 8 9   ... and last
    ids = np.array([1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 8, 9, 0, 1, 2, 3, 4], dtype=np.intc)
    assert lookup(ids).tolist() == [8, 9, 0]  # the latest occurrence, not the first
    # Told next how far the model followed: two of the three drafts kept, then its own token.
    assert lookup(np.append(ids, [8, 9, 7])).tolist() == [] and (lookup.proposed, lookup.accepted) == (3, 2)


def test_no_drafts_without_a_long_enough_run() -> None:
    ids = np.array([5, 6, 7, 8, 9, 6, 7], dtype=np.intc)  # "6 7" recurs, shorter than MIN_NGRAM
    assert MIN_NGRAM > 2 and PromptLookup(4)(ids).size == 0


@pytest.mark.model
def test_drafted_generation_writes_what_plain_decoding_writes_in_fewer_steps() -> None:
    """A reply that copies from its prompt: the same JSON with drafting on, most of it from accepted drafts."""
    from intentos.backends import LlamaCppBackend

    names = ["Projects/website/index.html", "Projects/website/style.css", "Documents/Invoices/march.pdf"]
    ask = [Message(role="user", content=f"Repeat this JSON exactly: {json.dumps({'paths': names})}")]
    schema = {"type": "object", "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
              "required": ["paths"]}
    spec = "llamacpp:smollm2"
    replies = {}
    for drafts in (0, 10):
        backend = LlamaCppBackend(spec, BackendSettings(spec=spec, n_ctx=1024, draft_tokens=drafts))
        replies[drafts] = backend.generate(ask, schema, GenerateOptions(max_tokens=80, temperature=0.0))
    assert replies[10].text == replies[0].text and json.loads(replies[0].text)["paths"][0] == names[0]
    timings = replies[10].server_timings
    assert "drafts_proposed" not in replies[0].server_timings
    assert timings["drafts_accepted"] >= replies[10].completion_tokens // 2  # most tokens came as drafts
