"""The shared Logsy encoder: loss, vocabulary, deduplication, training, streamed scoring, model files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from intentos.errors import AppError
from intentos.skills.logs.model import (
    CLS,
    UNK,
    EncoderSettings,
    LogEncoder,
    LogModelError,
    UniqueMessages,
    Vocab,
    best_f1_threshold,
    load_bundle,
    logsy_loss,
    save_bundle,
)

TINY = EncoderSettings(dim=32, heads=2, layers=1, ff_dim=64, epochs=3, steps_per_epoch=40, seed=3, threads=1)
NORMAL = [f"request {i} served in {i % 50} ms" for i in range(200)] + [f"cache hit key=user:{i}" for i in range(200)]
OTHER = [f"fatal error disk {i} unreadable, kernel panic" for i in range(50)]


@pytest.fixture(scope="module")
def trained() -> LogEncoder:
    encoder = LogEncoder.from_messages(NORMAL + OTHER, TINY)
    encoder.train_pairs(encoder.encode(NORMAL), encoder.encode(OTHER))
    return encoder


def test_logsy_loss_matches_the_formula() -> None:
    z = torch.tensor([[0.3, 0.4], [3.0, 4.0], [0.6, 0.8]])  # norms 0.5, 5, 1
    y = torch.tensor([0, 1, 1])
    r = np.array([0.5, 5.0, 1.0])
    expected = np.mean([r[0], -math.log(1 - math.exp(-r[1])), -math.log(1 - math.exp(-r[2]))])
    assert float(logsy_loss(z, y)) == pytest.approx(expected, rel=1e-4)


def test_vocab_is_deterministic_and_maps_unknown_tokens() -> None:
    a = Vocab.build(NORMAL)
    b = Vocab.build(list(reversed(NORMAL)))
    assert a.tokens == b.tokens
    ids = a.ids(["request", "never-seen", "served"], max_len=3)
    assert ids[0] == a.index[CLS] and ids[2] == a.index[UNK] and len(ids) == 3  # truncated to max_len


def test_unique_messages_deduplicates_variable_parts() -> None:
    unique = UniqueMessages(iter(NORMAL))  # a generator: consumed once
    assert len(unique) == len(NORMAL)
    assert len(unique.sequences) == 2  # numbers become <num>: two message types
    assert unique.token_counts["request"] == 200 and unique.token_counts["<num>"] == 400 + 200


def test_training_separates_the_classes(trained: LogEncoder) -> None:
    normal = trained.score(NORMAL)
    other = trained.score(OTHER)
    assert normal.max() < other.min()
    threshold, f1 = best_f1_threshold(np.concatenate([normal, other]), np.r_[np.zeros(400), np.ones(50)])
    assert f1 == 1.0 and normal.max() < threshold < other.min()


def test_scoring_streams_its_input(trained: LogEncoder) -> None:
    consumed = 0

    def endless() -> Iterator[str]:
        nonlocal consumed
        while True:
            consumed += 1
            yield NORMAL[consumed % len(NORMAL)]

    batches = list(islice(trained.iter_scores(endless()), 2))
    assert [len(b) for b in batches] == [TINY.score_batch] * 2
    assert consumed <= 2 * TINY.score_batch + 1


def test_bundle_round_trip_gives_identical_scores(trained: LogEncoder, tmp_path: Path) -> None:
    path = tmp_path / "m" / "model.pt"
    save_bundle(path, trained, 1.25, {"detector": "test", "note": "x"})
    loaded, threshold, extra = load_bundle(path, detector="test")
    probe = NORMAL[:7] + OTHER[:5] + ["completely new words here"]
    assert threshold == 1.25 and extra["note"] == "x"
    assert np.array_equal(loaded.score(probe), LogEncoder.from_state(trained.state()).score(probe))
    with pytest.raises(LogModelError, match="not 'a2log'"):
        load_bundle(path, detector="a2log")


def test_bad_model_files_and_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(LogModelError, match="no such model file"):
        load_bundle(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    with pytest.raises(LogModelError, match="junk.pt"):
        load_bundle(junk)
    with pytest.raises(LogModelError, match="multiple of heads"):
        EncoderSettings(dim=30, heads=4)
    with pytest.raises(AppError, match="epochs"):
        EncoderSettings(epochs=0)


def test_training_needs_both_classes() -> None:
    encoder = LogEncoder.from_messages(NORMAL, TINY)
    with pytest.raises(LogModelError, match="both classes"):
        encoder.train_pairs(encoder.encode(NORMAL), [])


def test_best_f1_threshold_without_anomalies_flags_nothing() -> None:
    scores = np.array([0.1, 0.5, 0.3])
    threshold, f1 = best_f1_threshold(scores, np.zeros(3, bool))
    assert f1 == 0.0 and not (scores > threshold).any()
