"""The simulator: deterministic for a seed, and anomalies that spread the way each scenario says."""

from __future__ import annotations

import numpy as np
import pytest

from intentos.skills.faults.metrics import METRICS
from intentos.skills.faults.simulator import COLOCATED_EFFECT, KINDS, SCENARIOS, Simulator, simulate, webshop

CPU, MEM, DISK, LAT = (METRICS.index(m) for m in ("cpu", "memory", "disk_io", "latency"))
# packet loss shows most in latency (retransmissions); the traffic it drops hides in load variation
SIGNATURE = {"cpu_stress": (CPU, 1), "memory_leak": (MEM, 1), "packet_loss": (LAT, 1), "disk_stress": (DISK, 1)}
W = 40


def shift(values: np.ndarray, node: int, metric: int, onset: int) -> float:
    """How far a metric moved after the onset, in units of its spread before."""
    before, after = values[node, metric, :onset], values[node, metric, -8:]
    return float((after.mean() - before.mean()) / (before.std() + 1e-6 + 0.01 * abs(before.mean())))


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (simulate(incidents=6, seed=s, window=W) for s in (5, 5, 6))
    assert all(np.array_equal(x, y) for x, y in zip(a.values, b.values, strict=True))
    assert a.incidents == b.incidents
    assert not np.allclose(a.values[0], c.values[0])
    assert a.values[0].shape == (len(a.topology.components), len(METRICS), W)
    assert np.isfinite(a.stacked()).all() and (a.stacked() >= 0).all()


def test_plan_mixes_scenarios_kinds_and_normal_windows() -> None:
    sim = simulate(incidents=60, seed=1, window=W)
    scenarios = {i.scenario for i in sim.incidents}
    assert scenarios == {*SCENARIOS, "none"}
    assert {i.kind for i in sim.incidents if i.kind} == set(KINDS)
    for inc in sim.incidents:
        assert len(inc.origins) == (0 if inc.scenario == "none" else 1)
        assert inc.end - inc.start == (W - 1) / 2  # 2 Hz


@pytest.mark.parametrize("kind", KINDS)
def test_the_origin_shows_its_anomaly(kind: str) -> None:
    sim = Simulator(webshop(), seed=3, window=W)
    shifts = []
    for i in range(6):
        values, inc = sim.incident(i, "local", kind)
        node = sim.index[next(iter(inc.origins))]
        onset = int(round((inc.onset - inc.start) * 2))
        metric, sign = SIGNATURE[kind]
        shifts.append(sign * shift(values, node, metric, onset))
        assert not inc.affected  # local: nothing else is injected
    assert np.median(shifts) > 3, shifts


def test_downstream_and_upstream_spread_along_dependencies() -> None:
    topo = webshop()
    sim = Simulator(topo, seed=4, window=W)
    for scenario, step in (("downstream", topo.callees), ("upstream", topo.callers)):
        spread = 0
        for i in range(12):
            _, inc = sim.incident(i, scenario)
            origin = next(iter(inc.origins))
            one_hop = set(step(origin))
            two_hops = one_hop | {n for m in one_hop for n in step(m)}
            assert set(inc.affected) <= two_hops, (scenario, origin, inc.affected)
            assert all(k == inc.kind for k in inc.affected.values())  # the same anomaly travels
            spread += len(inc.affected)
        assert spread >= 12  # most incidents do spread


def test_colocated_neighbours_show_a_different_anomaly() -> None:
    topo = webshop()
    sim = Simulator(topo, seed=5, window=W)
    for i in range(8):
        values, inc = sim.incident(i, "colocated")
        origin = next(iter(inc.origins))
        assert set(inc.affected) == set(topo.colocated(origin))
        assert set(inc.affected.values()) == {COLOCATED_EFFECT[inc.kind]} and COLOCATED_EFFECT[inc.kind] != inc.kind


def test_victims_show_symptoms_later_than_the_origin() -> None:
    """Propagated cpu stress: the neighbour's cpu rises too, a few seconds after the origin's."""
    sim = Simulator(webshop(), seed=6, window=60)
    lags = []
    for i in range(10):
        values, inc = sim.incident(i, "downstream", "cpu_stress")
        origin = sim.index[next(iter(inc.origins))]
        for name in inc.affected:
            node = sim.index[name]
            rise = [int(np.argmax(values[n, CPU] > values[n, CPU, :15].mean() + 20)) for n in (origin, node)]
            if min(rise) > 0:
                lags.append(rise[1] - rise[0])
    assert lags and np.median(lags) > 0, lags


def test_a_cycle_cannot_be_simulated() -> None:
    from intentos.skills.faults.topology import Dependency

    topo = webshop()
    topo.dependencies.append(Dependency(caller="orders-db", callee="orders"))
    with pytest.raises(ValueError, match="cycle"):
        Simulator(topo)
