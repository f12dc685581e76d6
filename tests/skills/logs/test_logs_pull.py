"""LogLAB and PULL label lines from imprecise failure windows only, far better than the windows themselves."""

from __future__ import annotations

import numpy as np
import pytest

from intentos.skills.logs.model import EncoderSettings
from intentos.skills.logs.pull import (
    LabelResult,
    LogModelError,
    PullSettings,
    estimate_prior,
    label_from_failure_windows,
    naive_window_labels,
    window_mask,
)
from intentos.skills.logs.taxonomy import LabelledLog, generated_split

SETTINGS = PullSettings(encoder=EncoderSettings(epochs=6, steps_per_epoch=40, seed=0, threads=1), max_iterations=2)


def f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = float((truth & pred).sum())
    return 2 * tp / (truth.sum() + pred.sum()) if tp else 0.0


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> LabelledLog:
    _, test = generated_split(tmp_path_factory.mktemp("pull"), "service", lines=4000, seed=0, anomaly_rate=0.03)
    return test


@pytest.fixture(scope="module")
def pull(log: LabelledLog) -> LabelResult:
    return label_from_failure_windows(log.timestamps, log.messages, log.windows, "pull", SETTINGS)


def test_pull_beats_naive_window_labels(pull: LabelResult, log: LabelledLog) -> None:
    naive = naive_window_labels(log.timestamps, log.windows)
    assert naive[log.anomalous].all()  # the generator's windows cover every anomaly (premise of the papers)
    assert pull.labels[log.types == "template"].mean() >= 0.9
    assert log.anomalous[pull.labels].mean() >= 0.8  # precision
    # All types count: single-message labelling misses attribute/contextual lines (see test_taxonomy), and
    # still doubles the F1 of the windows themselves.
    assert f1(log.anomalous, pull.labels) > 2 * f1(log.anomalous, naive)
    # Refinement never loses what LogLAB (round 1) found (the paper: PULL >= LogLAB).
    assert pull.first_round is not None
    assert f1(log.anomalous, pull.labels) >= f1(log.anomalous, pull.first_round)


def test_pull_iterates_and_only_labels_inside_windows(pull: LabelResult, log: LabelledLog) -> None:
    assert pull.method == "pull" and pull.iterations >= 2 and len(pull.history) == pull.iterations
    assert not (pull.labels & ~pull.in_window).any()
    assert pull.history[1]["moved_to_normal"] > 0  # refinement moves normal-looking lines out of U
    assert pull.summary()["anomalous"] == int(pull.labels.sum())
    assert 0 < pull.prior < 0.2


def test_loglab_beats_naive_window_labels(pull: LabelResult, log: LabelledLog) -> None:
    # PULL's first round is LogLAB: one balanced N-vs-U training run, no refinement.
    assert pull.first_round is not None
    naive = naive_window_labels(log.timestamps, log.windows)
    assert pull.first_round[log.types == "template"].mean() >= 0.8
    assert log.anomalous[pull.first_round].mean() >= 0.8
    assert f1(log.anomalous, pull.first_round) > 2 * f1(log.anomalous, naive)


def test_loglab_is_pulls_first_round_and_deterministic_on_a_stream(log: LabelledLog) -> None:
    small = PullSettings(encoder=EncoderSettings(epochs=2, steps_per_epoch=10, seed=5, threads=1), max_iterations=1)
    part = slice(0, 1500)
    args = (log.timestamps[part], log.messages[part], log.windows)
    loglab = label_from_failure_windows(*args, "loglab", small)
    streamed = label_from_failure_windows(log.timestamps[part], iter(log.messages[part]), log.windows, "loglab", small)
    pull = label_from_failure_windows(*args, "pull", small)
    assert loglab.iterations == 1 and loglab.method == "loglab"
    assert np.array_equal(loglab.labels, streamed.labels) and np.array_equal(loglab.scores, streamed.scores)
    assert pull.first_round is not None and np.array_equal(pull.first_round, loglab.labels)


def test_no_windows_means_no_anomalies() -> None:
    result = label_from_failure_windows([1.0, 2.0], ["a b", "c d"], [], "pull", SETTINGS)
    assert not result.labels.any() and result.iterations == 0


def test_window_mask_handles_overlap_and_order() -> None:
    t = np.array([0.0, 1.0, 2.5, 4.0, 5.0, 9.0, 10.0])
    mask = window_mask(t, [(8.0, 9.0), (1.0, 3.0), (2.0, 4.0)])
    assert mask.tolist() == [False, True, True, True, False, True, False]


@pytest.mark.parametrize(
    ("timestamps", "messages", "windows", "method", "match"),
    [
        ([1.0, 2.0], ["a"], [(0.0, 1.0)], "pull", "2 timestamps but 1 messages"),
        ([1.0, float("nan")], ["a", "b"], [(0.0, 1.0)], "pull", "no timestamp"),
        ([1.0, 2.0], ["a", "b"], [(2.0, 1.0)], "pull", "end >= start"),
        ([1.0, 2.0], ["a", "b"], [(0.0, 5.0)], "pull", "every line is inside"),
        ([], [], [(0.0, 5.0)], "pull", "no log lines"),
        ([1.0], ["a"], [(0.0, 5.0)], "magic", "unknown method"),
    ],
)
def test_bad_input_is_named(timestamps: list, messages: list, windows: list, method: str, match: str) -> None:
    with pytest.raises(LogModelError, match=match):
        label_from_failure_windows(timestamps, messages, windows, method, SETTINGS)  # type: ignore[arg-type]


def test_bad_settings_are_named() -> None:
    with pytest.raises(LogModelError, match="normal_quantile"):
        PullSettings(normal_quantile=1.5)


def test_prior_estimate_is_an_upper_bound_that_reaches_one_when_u_is_unlike_n() -> None:
    rng = np.random.default_rng(0)
    normal = rng.uniform(0.0, 1.0, 20000)
    # U = 70% lines scoring like N + 30% anomalies far above: the estimate finds the mixture share.
    mixed = np.concatenate([rng.uniform(0.0, 1.0, 7000), rng.uniform(5.0, 9.0, 3000)])
    assert 0.28 <= estimate_prior(normal, mixed) <= 0.36
    # U's normal lines all of window-only types scoring high (BGL): no evidence of N-like lines -> pi ~ 1,
    # so the nnPU correction cannot push U (anomalies included) back to the centre.
    assert estimate_prior(normal, rng.uniform(3.0, 9.0, 200)) == 1.0
