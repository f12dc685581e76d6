"""The taxonomy (template / attribute / contextual) of injected anomalies, and which detector suits which type."""

from __future__ import annotations

import numpy as np
import pytest

from intentos.skills.logs.a2log import A2LogSettings
from intentos.skills.logs.model import EncoderSettings
from intentos.skills.logs.pull import PullSettings
from intentos.skills.logs.taxonomy import (
    AnomalyType,
    LabelledLog,
    TaxonomyError,
    TaxonomyModel,
    detector_fit,
    generated_split,
    measure_fit,
    summarize,
    unseen_template_baseline,
)

TYPES = ("template", "attribute", "contextual")


@pytest.fixture(scope="module", params=("service", "hdfs"))
def split(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[LabelledLog, LabelledLog]:
    return generated_split(tmp_path_factory.mktemp("tax"), request.param, lines=5000, seed=0, anomaly_rate=0.03)


@pytest.fixture(scope="module")
def fitted(split: tuple[LabelledLog, LabelledLog]) -> TaxonomyModel:
    train, _ = split
    return TaxonomyModel().fit(train.messages, train.sessions)


def test_each_injected_type_is_classified_correctly_for_most_lines(
    fitted: TaxonomyModel, split: tuple[LabelledLog, LabelledLog]
) -> None:
    _, test = split
    kinds = fitted.classify(test.messages, sessions=test.sessions)
    for t in TYPES:
        lines = test.types == t
        assert lines.sum() >= 5, f"the generated log should hold {t} anomalies"
        assert (kinds[lines] == t).mean() >= 0.7, (
            t,
            dict(zip(*np.unique(kinds[lines], return_counts=True), strict=True)),
        )
    assert (kinds[~test.anomalous] == AnomalyType.UNKNOWN.value).mean() >= 0.98  # normal lines: no evidence


def test_classify_types_only_detected_lines(fitted: TaxonomyModel, split: tuple[LabelledLog, LabelledLog]) -> None:
    _, test = split
    detected = test.types == "template"
    kinds = fitted.classify(test.messages, detected, test.sessions)
    assert set(kinds[~detected]) == {""}
    counts = summarize(kinds)
    assert counts["template"] == detected.sum() and set(counts) == {k.value for k in AnomalyType}


def test_evidence_names_the_reason(fitted: TaxonomyModel, split: tuple[LabelledLog, LabelledLog]) -> None:
    _, test = split
    evidence = fitted.explain(test.messages, test.sessions)
    contextual = [evidence[i] for i in np.flatnonzero(test.types == "contextual")]
    assert any("burst" in c or "transition" in c for ev in contextual for c in ev.context)
    attribute = [evidence[i] for i in np.flatnonzero(test.types == "attribute")]
    assert any(ev.attributes and ev.attributes[0].startswith("param ") for ev in attribute)


def test_unseen_template_baseline_catches_template_anomalies(split: tuple[LabelledLog, LabelledLog]) -> None:
    train, test = split
    flagged = unseen_template_baseline(train.messages, test.messages)
    assert flagged[test.types == "template"].mean() >= 0.9 and flagged[test.types == "contextual"].mean() <= 0.1


def test_detector_fit_reports_which_detector_suits_which_type() -> None:
    encoder = EncoderSettings(epochs=6, steps_per_epoch=40, seed=0, threads=1)
    report = detector_fit(
        "service",
        lines=4000,
        seed=0,
        a2log_settings=A2LogSettings(encoder=encoder),
        pull_settings=PullSettings(encoder=encoder, max_iterations=1),
    )
    assert set(report.counts) == set(TYPES)
    # Message-level detectors find new message types but are blind to context by construction.
    assert report.recall["A2Log"]["template"] >= 0.8 and report.recall["PULL"]["template"] >= 0.8
    assert report.recall["A2Log"]["contextual"] <= 0.3 and report.recall["PULL"]["contextual"] <= 0.3
    best = report.best()
    assert best["contextual"] == best["attribute"] == "taxonomy statistics"
    assert "A2Log" in report.table() and set(report.reasons) == set(TYPES)


def test_bad_input_is_named(fitted: TaxonomyModel, split: tuple[LabelledLog, LabelledLog]) -> None:
    _, test = split
    with pytest.raises(TaxonomyError, match="got none"):
        TaxonomyModel().fit([])
    with pytest.raises(TaxonomyError, match="not fitted"):
        TaxonomyModel().classify(["x"])
    with pytest.raises(TaxonomyError, match="2 messages but 1 session"):
        fitted.explain(["a", "b"], ["s"])
    with pytest.raises(TaxonomyError, match="gave 1 decisions"):
        measure_fit(test, "x", {"broken": np.array([True])})


@pytest.mark.parametrize("unit", ["ms", " ms", " sec"])
def test_a_number_kept_with_its_unit_is_judged_as_a_number(unit: str) -> None:
    # The template miner keeps "45 ms" as one value; the attribute statistics must still read 45 off it.
    rng = np.random.default_rng(0)
    normal = [f"request served in {int(v)}{unit} status ok" for v in rng.integers(20, 80, 300)]
    model = TaxonomyModel().fit(normal)
    slow, usual = model.explain([f"request served in 45000{unit} status ok", f"request served in 50{unit} status ok"])
    assert slow.kind is AnomalyType.ATTRIBUTE and "45000" in slow.attributes[0]
    assert usual.kind is AnomalyType.UNKNOWN
