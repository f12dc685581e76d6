"""Scores (macro-F1, PR@k, MAP) on hand-made rankings, and the isolation-forest baseline on clear incidents."""

from __future__ import annotations

import numpy as np
import pytest

from intentos.skills.faults.baseline import IsolationBaseline
from intentos.skills.faults.scoring import score
from intentos.skills.faults.simulator import CLASSES, Simulator, webshop


def test_pr_at_k_and_map_on_known_rankings() -> None:
    labels = [np.array([0, 2, 0, 0]), np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])]
    anomaly = [np.array([0.1, 0.9, 0.2, 0.0]),  # origin first
               np.array([0.9, 0.8, 0.7, 0.6])]  # origin last of 4
    anomaly.append(np.zeros(4))
    predicted = [np.array([0, 2, 0, 0]), np.array([1, 0, 0, 0]), np.array([0, 0, 0, 0])]
    s = score(labels, predicted, anomaly)
    assert s.anomalous_incidents == 2 and s.incidents == 3
    assert s.pr_at == {1: 0.5, 2: 0.5, 3: 0.5}
    assert s.map == pytest.approx((1 + 1 / 4) / 2)
    # classes 0, 1, 2: normal F1 = 2*9/(2*9+1+1)=0.9, class 2 = 1, class 1 = 0 (one wrong, one missed)
    assert s.macro_f1 == pytest.approx((0.9 + 0 + 1) / 3)


def test_baseline_finds_strong_local_anomalies() -> None:
    topo = webshop()
    sim = Simulator(topo, seed=8, window=40)
    normal = [sim.incident(i, None)[0] for i in range(30)]
    base = IsolationBaseline(seed=0, trees=20).fit(topo.names, normal)
    windows, truths = zip(*(sim.incident(100 + i, "local", "cpu_stress") for i in range(8)), strict=True)
    found = 0
    for (cls, anomaly), inc in zip(base.predict(topo.names, list(windows)), truths, strict=True):
        origin = topo.names.index(next(iter(inc.origins)))
        found += int(np.argmax(anomaly) == origin and cls[origin] == CLASSES.index("cpu_stress"))
    assert found >= 6
    quiet = base.predict(topo.names, [sim.incident(200 + i, None)[0] for i in range(8)])
    # few false alarms on most normal windows (a traffic burst moves every component, and fools it)
    assert np.median([(cls > 0).mean() for cls, _ in quiet]) < 0.1
