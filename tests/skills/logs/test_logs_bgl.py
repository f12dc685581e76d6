"""Anomaly detection on real labelled logs (LogHub BGL_2k), split chronologically, through the logs app:
the figures `benchmarks/bench_logs_detect.py --only loghub` prints, held within a tolerance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intentos.app import Context
from intentos.errors import AppError
from intentos.sandbox import Sandbox
from intentos.skills.logs.app import DetectArgs, LogsApp
from intentos.skills.logs.records import read_records
from intentos.skills.logs.supervised import SupervisedDetector

BGL = Path(__file__).resolve().parents[4] / "shared" / "data" / "loghub" / "BGL_2k.log"
pytestmark = pytest.mark.skipif(not BGL.exists(), reason="../shared/data/loghub/BGL_2k.log absent")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> LogsApp:
    """first.log: the first 1000 lines of BGL_2k (with their labels); second.log: the last 1000."""
    box = Sandbox(tmp_path_factory.mktemp("bgl") / "sandbox")
    lines = BGL.read_bytes().splitlines(keepends=True)
    (box.root / "first.log").write_bytes(b"".join(lines[:1000]))
    (box.root / "second.log").write_bytes(b"".join(lines[1000:]))
    return LogsApp(Context(sandbox=box))


def f1_of(logs: LogsApp, method: str) -> float:
    result = logs.detect_anomalies(DetectArgs(path="second.log", reference="first.log", method=method, top=1000))
    flagged = {line.line for line in result.top if line.over_threshold}
    truth = {r.lineno for r in read_records(logs.ctx.sandbox.root / "second.log") if r.label == 1}
    tp = len(flagged & truth)
    return 2 * tp / (len(flagged) + len(truth)) if flagged or truth else 0.0


def test_the_supervised_detector_beats_the_unseen_template_baseline_on_a_chronological_split(logs: LogsApp) -> None:
    # The second half's alerts are all of categories absent from the first half (APPSEV, KERNMNTF, ...).
    supervised, unseen = f1_of(logs, "supervised"), f1_of(logs, "unseen_template")
    assert supervised == pytest.approx(0.605, abs=0.05)
    assert unseen == pytest.approx(0.125, abs=0.03)
    assert supervised - unseen >= 0.3


def test_supervised_needs_labelled_lines(logs: LogsApp) -> None:
    root = logs.ctx.sandbox.root
    unlabelled = [r.raw.split(" ", 1)[1] for r in read_records(root / "first.log")]  # the label column dropped
    (root / "plain.log").write_text("\n".join(unlabelled) + "\n")
    with pytest.raises(AppError, match="supervised learns from labelled lines") as info:
        logs.detect_anomalies(DetectArgs(path="second.log", reference="plain.log", method="supervised"))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="both anomalous and normal"):
        SupervisedDetector().fit(["a", "b"], [0, 0])


def test_supervised_scores_are_probabilities() -> None:
    messages = ["disk ok", "disk failed badly", "fan ok", "fan failed"] * 5
    detector = SupervisedDetector().fit(messages, [0, 1, 0, 1] * 5)
    scores = detector.score(["pump failed", "pump ok"])
    assert np.all((scores >= 0) & (scores <= 1)) and scores[0] > 0.5 > scores[1]
    assert detector.predict(["pump failed"]).tolist() == [True]
