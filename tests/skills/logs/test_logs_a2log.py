"""A2Log on generated logs: trained on normal lines only, it finds injected template anomalies; the
augmentation threshold needs no labels, the labelled threshold is the paper's strong baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intentos.skills.logs.a2log import A2Log, A2LogSettings, augment
from intentos.skills.logs.generator import generate
from intentos.skills.logs.model import EncoderSettings, LogModelError
from intentos.skills.logs.taxonomy import EVAL_GENERATOR, LabelledLog, generated_split, load_generated

SETTINGS = A2LogSettings(encoder=EncoderSettings(epochs=6, steps_per_epoch=40, seed=0, threads=1))


def f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = float((truth & pred).sum())
    return 2 * tp / (truth.sum() + pred.sum()) if tp else 0.0


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabelledLog, LabelledLog, LabelledLog]:
    tmp = tmp_path_factory.mktemp("a2log")
    train, test = generated_split(tmp, "service", lines=4000, seed=0, anomaly_rate=0.03)
    generate(tmp / "validation.log", kind="service", lines=4000, anomaly_rate=0.03, seed=7, **EVAL_GENERATOR)
    return train, test, load_generated(tmp / "validation.log")


@pytest.fixture(scope="module")
def model(logs: tuple[LabelledLog, LabelledLog, LabelledLog]) -> A2Log:
    train, _, _ = logs
    return A2Log(SETTINGS).fit(iter(train.messages))  # any iterable: fit streams its input once


def test_augmentation_threshold_finds_template_anomalies_without_labels(
    model: A2Log, logs: tuple[LabelledLog, LabelledLog, LabelledLog]
) -> None:
    _, test, _ = logs
    pred = model.predict(test.messages)
    truth = test.anomalous
    naive = f1(truth, np.ones_like(truth))  # flag everything
    assert model.threshold_mode == "augmentation" and model.threshold == model.augmentation_threshold
    assert pred[test.types == "template"].mean() >= 0.9
    assert truth[pred].mean() >= 0.5  # precision: few normal lines flagged
    assert f1(truth, pred) > 3 * naive
    assert model.diagnostics["augmentation_f1"] > 0.8  # normal hold-out vs augmented copies separate


def test_labelled_threshold_is_the_strong_baseline(
    model: A2Log, logs: tuple[LabelledLog, LabelledLog, LabelledLog], tmp_path: Path
) -> None:
    _, test, validation = logs
    aug_pred = model.predict(test.messages)
    labelled = A2Log.load(_saved(model, tmp_path))  # a copy, so the shared model keeps its threshold
    reached = labelled.calibrate(validation.messages, validation.anomalous)
    assert labelled.threshold_mode == "labelled" and 0 < reached <= 1
    # Best F1 on the labelled data: at least as good there as the label-free threshold.
    val_aug = labelled.predict(validation.messages, labelled.augmentation_threshold)
    assert reached == pytest.approx(f1(validation.anomalous, labelled.predict(validation.messages)))
    assert reached >= f1(validation.anomalous, val_aug)
    # And it carries over to unseen data: well above flagging everything.
    lab_pred = labelled.predict(test.messages)
    assert f1(test.anomalous, lab_pred) > 3 * f1(test.anomalous, np.ones(len(test.messages), bool))
    # The augmentation threshold stays available next to the labelled one.
    assert np.array_equal(labelled.predict(test.messages, labelled.augmentation_threshold), aug_pred)


def test_fit_with_labels_sets_the_labelled_threshold(logs: tuple[LabelledLog, LabelledLog, LabelledLog]) -> None:
    train, _, validation = logs
    small = A2LogSettings(encoder=EncoderSettings(epochs=1, steps_per_epoch=10, threads=1))
    model = A2Log(small).fit(train.messages[:500], labelled=(validation.messages, validation.anomalous))
    assert model.threshold_mode == "labelled" and np.isfinite(model.augmentation_threshold)


def test_save_load_round_trip_gives_identical_scores(
    model: A2Log, logs: tuple[LabelledLog, LabelledLog, LabelledLog], tmp_path: Path
) -> None:
    _, test, _ = logs
    loaded = A2Log.load(_saved(model, tmp_path))
    assert np.array_equal(loaded.score(test.messages), A2Log.load(_saved(model, tmp_path)).score(test.messages))
    assert np.array_equal(loaded.predict(test.messages), model.predict(test.messages))
    assert np.allclose(loaded.score(test.messages[:300]), model.score(test.messages[:300]), rtol=0, atol=1e-5)
    assert loaded.threshold == model.threshold and loaded.threshold_mode == model.threshold_mode
    assert loaded.settings == model.settings


def test_streamed_predictions_match(model: A2Log, logs: tuple[LabelledLog, LabelledLog, LabelledLog]) -> None:
    _, test, _ = logs
    streamed = np.concatenate(list(model.iter_predict(iter(test.messages))))
    assert np.array_equal(streamed, model.predict(test.messages))


def test_training_data_is_sampled_to_a_bound(logs: tuple[LabelledLog, LabelledLog, LabelledLog]) -> None:
    train, _, _ = logs
    settings = A2LogSettings(encoder=EncoderSettings(epochs=1, steps_per_epoch=5, threads=1), max_train_messages=300)
    model = A2Log(settings).fit(m for m in train.messages)
    d = model.diagnostics
    assert d["seen_messages"] == len(train.messages) and d["train_messages"] + d["holdout_messages"] == 300


def test_augmentation_changes_messages() -> None:
    import random

    rng = random.Random(0)
    tokens = ["request", "<id>", "served", "in", "<num>", "ms"]
    variants = [augment(tokens, ["cache", "db", "token"], rng) for _ in range(50)]
    assert sum(v != tokens for v in variants) >= 45


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(LogModelError, match="at least two normal"):
        A2Log(SETTINGS).fit([])
    with pytest.raises(LogModelError, match="not fitted"):
        A2Log(SETTINGS).predict(["x"])
    with pytest.raises(LogModelError, match="holdout"):
        A2Log(A2LogSettings(holdout=1.5))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(LogModelError, match="junk.pt"):
        A2Log.load(junk)


def test_calibration_input_is_checked(model: A2Log) -> None:
    with pytest.raises(LogModelError, match="2 messages but 1 labels"):
        model.calibrate(["a", "b"], [True])
    with pytest.raises(LogModelError, match="both anomalous and normal"):
        model.calibrate(["a", "b"], [False, False])


def _saved(model: A2Log, tmp_path: Path) -> Path:
    path = tmp_path / "a2log.pt"
    model.save(path)
    return path
