"""A simulated distributed application with injected anomalies that propagate along its dependencies.

The default application is a web shop on seven hosts (load balancer, two frontends, an API gateway,
services, caches, databases, a queue and its workers). Each incident is one window of metrics at 2 Hz
for every component: cpu (%), memory (MB), network in/out (KB/s), disk io (ops/s) and latency (ms).

What makes it not trivially separable:
- load varies: a slow wave, a random walk and bursts at the entry travel through the call graph, so
  every component's cpu, network and latency move together without any fault;
- noise per metric, and short benign spikes (GC pauses, cache flushes) on single components;
- latency composes: a caller's latency includes part of its callees', so a slow callee shows upstream
  in every scenario;
- the anomaly's intensity varies per incident (some are faint);
- in the propagating scenarios neighbours show symptoms as strong as (slightly weaker than) the origin's,
  a few seconds later, and only the origin is labelled anomalous, the task of the paper: find where it
  started, not everything that suffers.

Scenarios (after the paper's propagation cases): `local` (only the origin), `downstream` (the same
anomaly spreads to callees, up to two hops), `upstream` (to callers, up to two hops), `colocated`
(components sharing the origin's host show a *different* anomaly, through the shared resource).
Deterministic for a seed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from intentos.skills import kit
from intentos.skills.faults.metrics import METRICS
from intentos.skills.faults.topology import Component, Dependency, Topology

HZ = 2.0
KINDS = ("cpu_stress", "memory_leak", "packet_loss", "disk_stress")
CLASSES = ("normal", *KINDS)
SCENARIOS = ("local", "downstream", "upstream", "colocated")
Scenario = Literal["local", "downstream", "upstream", "colocated"]
T0 = 1_700_000_000.0  # the first sample's Unix time: fixed, so files are reproducible
# What a neighbour on the same host shows: the shared resource turns one anomaly into another.
COLOCATED_EFFECT = {
    "memory_leak": "disk_stress",  # the host swaps: the neighbours' disk io rises
    "disk_stress": "cpu_stress",  # neighbours wait on io: cpu (iowait) and latency rise
    "cpu_stress": "packet_loss",  # softirq starvation: the neighbours' packets are dropped
    "packet_loss": "cpu_stress",  # the shared NIC's retransmissions and interrupts cost neighbours cpu
}
_I = {m: i for i, m in enumerate(METRICS)}


class Incident(BaseModel):
    """The ground truth of one window: where it is in the metrics and what was injected."""

    index: int
    start: float = Field(description="timestamp of the window's first sample")
    end: float = Field(description="timestamp of the window's last sample")
    scenario: str = Field(description="local | downstream | upstream | colocated | none (no anomaly)")
    kind: str | None = None
    origins: dict[str, str] = Field(default_factory=dict, description="origin component -> anomaly kind")
    onset: float | None = None
    intensity: float = 0.0
    affected: dict[str, str] = Field(default_factory=dict, description="component -> symptom shown, propagated")


class GroundTruth(BaseModel):
    """What `simulate` writes next to the metrics (and what `train` reads as labels)."""

    hz: float = HZ
    window: int = Field(ge=1, le=100_000)
    classes: list[str] = Field(default_factory=lambda: list(CLASSES))
    incidents: list[Incident] = Field(max_length=100_000)


@dataclass
class Simulation:
    topology: Topology
    incidents: list[Incident]
    values: list[np.ndarray] = field(default_factory=list)  # per incident [N, M, W]

    def timestamps(self) -> np.ndarray:
        w = self.values[0].shape[-1] if self.values else 0
        return T0 + np.arange(len(self.values) * w) / HZ

    def stacked(self) -> np.ndarray:
        return np.concatenate(self.values, axis=-1)

    def truth(self) -> GroundTruth:
        return GroundTruth(window=self.values[0].shape[-1], incidents=self.incidents)


def webshop() -> Topology:
    """The default application: 19 components on 7 hosts."""
    comps = [
        ("lb", "edge-1", "load_balancer"), ("frontend-1", "edge-1", "frontend"), ("frontend-2", "edge-2", "frontend"),
        ("api-gateway", "edge-2", "gateway"), ("auth", "app-1", "service"), ("catalog", "app-1", "service"),
        ("search", "app-2", "service"), ("recommendations", "app-2", "service"), ("cart", "app-3", "service"),
        ("orders", "app-3", "service"), ("payment", "app-2", "service"), ("session-cache", "app-3", "cache"),
        ("catalog-cache", "app-1", "cache"), ("catalog-db", "data-1", "database"), ("orders-db", "data-2", "database"),
        ("search-index", "data-1", "database"), ("queue", "data-2", "queue"),
        ("worker-fulfillment", "app-1", "worker"), ("worker-email", "app-2", "worker"),
    ]
    deps = [
        ("lb", "frontend-1"), ("lb", "frontend-2"), ("frontend-1", "api-gateway"), ("frontend-2", "api-gateway"),
        ("api-gateway", "auth"), ("api-gateway", "catalog"), ("api-gateway", "search"), ("api-gateway", "cart"),
        ("api-gateway", "orders"), ("api-gateway", "recommendations"), ("auth", "session-cache"),
        ("cart", "session-cache"), ("cart", "catalog"), ("catalog", "catalog-cache"), ("catalog", "catalog-db"),
        ("recommendations", "catalog"), ("search", "search-index"), ("orders", "payment"), ("orders", "orders-db"),
        ("orders", "queue"), ("worker-fulfillment", "queue"), ("worker-fulfillment", "orders-db"),
        ("worker-email", "queue"),
    ]
    hosts = ["edge-1", "edge-2", "app-1", "app-2", "app-3", "data-1", "data-2"]
    return Topology(name="webshop", hosts=hosts,
                    components=[Component(name=n, host=h, kind=k) for n, h, k in comps],
                    dependencies=[Dependency(caller=a, callee=b) for a, b in deps])


# Per role: idle cpu %, cpu % at mean load, memory MB, KB in / out per request, disk ops idle and per
# request, service time ms. Drawn with jitter per simulation, so two seeds are two different shops.
_ROLE = {
    "load_balancer": (4, 20, 300, 1.5, 18, 1, 0.01, 1.0),
    "frontend": (8, 30, 800, 2, 25, 2, 0.02, 8.0),
    "gateway": (6, 25, 600, 3, 20, 2, 0.02, 3.0),
    "service": (6, 30, 900, 1.5, 6, 3, 0.05, 12.0),
    "cache": (3, 12, 2000, 0.5, 3, 1, 0.01, 0.8),
    "database": (8, 35, 4000, 1, 8, 30, 0.8, 6.0),
    "queue": (4, 15, 1000, 1, 1, 10, 0.3, 2.0),
    "worker": (5, 35, 400, 1, 0.5, 3, 0.1, 30.0),
}


@dataclass
class _Profile:
    cpu0: float
    cpu_mean: float
    mem0: float
    kb_in: float
    kb_out: float
    disk0: float
    disk_per: float
    svc_ms: float


def _order(topo: Topology) -> list[int]:
    """Callers before callees (Kahn); the load flows this way. A cycle cannot be simulated."""
    names = topo.names
    index = {n: i for i, n in enumerate(names)}
    indeg = [0] * len(names)
    for d in topo.dependencies:
        indeg[index[d.callee]] += 1
    ready = deque(i for i, k in enumerate(indeg) if k == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for callee in topo.callees(names[i]):
            j = index[callee]
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    if len(order) != len(names):
        stuck = [names[i] for i in range(len(names)) if i not in order]
        raise ValueError(f"the dependencies have a cycle through {', '.join(stuck[:5])}; the simulator needs a DAG")
    return order


class Simulator:
    """One application (topology + per-component profiles drawn from the seed) that yields incidents."""

    def __init__(self, topology: Topology, seed: int = 0, window: int = 60) -> None:
        if window < 16:
            raise ValueError("a window needs at least 16 samples (8 s at 2 Hz)")
        self.topo = topology
        self.window = window
        self.rng = np.random.default_rng(seed)
        self.names = topology.names
        self.index = {n: i for i, n in enumerate(self.names)}
        self.order = _order(topology)
        rng = self.rng
        self.fanout = {(d.caller, d.callee): float(rng.uniform(0.3, 1.0)) for d in topology.dependencies}
        self.base_load = float(rng.uniform(150, 250))
        self.mean_load = self._loads(np.full(1, self.base_load))[:, 0]
        self.profiles = []
        for c in topology.components:
            r = _ROLE.get(c.kind, _ROLE["service"])
            j = lambda x: float(x * rng.uniform(0.7, 1.3))  # noqa: E731 - jitter per component
            self.profiles.append(_Profile(j(r[0]), j(r[1]), j(r[2]), j(r[3]), j(r[4]), j(r[5]), j(r[6]), j(r[7])))

    # -- normal behaviour -----------------------------------------------------------------------------

    def _loads(self, entry: np.ndarray) -> np.ndarray:
        """Requests/s per component from the entry load: callers pass a share on to each callee; a root
        other than the first (a worker polling a queue) follows the entry load, smoothed."""
        load = np.zeros((len(self.names), entry.shape[-1]))
        roots = [i for i in self.order if not self.topo.callers(self.names[i])]
        for i in self.order:
            name = self.names[i]
            callers = self.topo.callers(name)
            if not callers:
                if i == roots[0]:
                    load[i] = entry
                else:  # exponential smoothing: a consumer drains its queue at a lag
                    share = 0.1 * entry
                    alpha = 0.1
                    acc = share[0]
                    out = np.empty_like(share)
                    for t, v in enumerate(share):
                        acc = (1 - alpha) * acc + alpha * v
                        out[t] = acc
                    load[i] = out
            else:
                load[i] = sum(load[self.index[c]] * self.fanout[(c, name)] for c in callers)
        return load

    def _entry(self, n: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(n) / HZ
        level = self.base_load * rng.uniform(0.6, 1.4)
        wave = 1 + 0.2 * np.sin(2 * np.pi * (t + rng.uniform(0, 600)) / rng.uniform(120, 600))
        walk = np.zeros(n)
        for k in range(1, n):  # Ornstein-Uhlenbeck: a mean-reverting random walk of the traffic
            walk[k] = walk[k - 1] * 0.95 + rng.normal(0, 0.03)
        bursts = np.zeros(n)
        for _ in range(rng.poisson(n / HZ / 40)):
            start, length = rng.integers(0, n), int(rng.uniform(3, 15) * HZ)
            bursts[start:start + length] += rng.uniform(0.2, 0.7)
        return level * wave * np.exp(walk) * (1 + bursts)

    # -- one incident ---------------------------------------------------------------------------------

    def incident(self, index: int, scenario: str | None, kind: str | None = None) -> tuple[np.ndarray, Incident]:
        """Metrics [N, M, W] of one window and its truth; scenario None: no anomaly."""
        rng = self.rng
        w = self.window
        warm = 40  # samples simulated before the window, so random walks are not at rest
        n = warm + w
        entry = self._entry(n, rng)
        load = self._loads(entry)
        effects: dict[int, tuple[str, float, float]] = {}  # node -> (kind, intensity, onset sample)
        truth = Incident(index=index, start=T0 + index * w / HZ, end=T0 + (index * w + w - 1) / HZ,
                         scenario=scenario or "none")
        if scenario is not None:
            kind = kind or str(rng.choice(KINDS))
            origin = self._origin(scenario, rng)
            amp = float(rng.uniform(0.5, 1.2))
            onset = warm + int(rng.integers(w // 4 + 4, int(w * 0.6) + 1))
            effects[origin] = (kind, amp, float(onset))
            self._propagate(scenario, origin, kind, amp, float(onset), effects, rng)
            name = self.names[origin]
            truth = truth.model_copy(update={
                "kind": kind, "origins": {name: kind}, "onset": T0 + (index * w + onset - warm) / HZ,
                "intensity": round(amp, 3),
                "affected": {self.names[i]: e[0] for i, e in effects.items() if i != origin}})
        values = self._metrics(load, effects, rng)[:, :, warm:]
        return values, truth

    def _origin(self, scenario: str, rng: np.random.Generator) -> int:
        relation = {"downstream": self.topo.callees, "upstream": self.topo.callers,
                    "colocated": self.topo.colocated}.get(scenario)
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r} ({', '.join(SCENARIOS)})")
        candidates = [i for i, n in enumerate(self.names) if relation is None or relation(n)]
        if not candidates:
            raise ValueError(f"no component of this topology can start a {scenario} incident")
        return int(rng.choice(candidates))

    def _propagate(self, scenario: str, origin: int, kind: str, amp: float, onset: float,
                   effects: dict[int, tuple[str, float, float]], rng: np.random.Generator) -> None:
        if scenario == "colocated":
            for peer in self.topo.colocated(self.names[origin]):
                effects[self.index[peer]] = (COLOCATED_EFFECT[kind], amp * float(rng.uniform(0.6, 1.0)),
                                             onset + float(rng.uniform(1, 6)) * HZ)
            return
        if scenario not in ("downstream", "upstream"):
            return
        step = self.topo.callees if scenario == "downstream" else self.topo.callers
        frontier = [(origin, amp, onset, 0)]
        while frontier:
            node, a, t, hops = frontier.pop(0)
            if hops == 2:
                continue
            for nb in step(self.names[node]):
                j = self.index[nb]
                if j in effects or rng.random() > 0.85:
                    continue
                effects[j] = (kind, a * float(rng.uniform(0.6, 0.95)), t + float(rng.uniform(1, 5)) * HZ)
                frontier.append((j, *effects[j][1:], hops + 1))

    def _metrics(self, load: np.ndarray, effects: dict[int, tuple[str, float, float]],
                 rng: np.random.Generator) -> np.ndarray:
        nodes, n = load.shape
        t = np.arange(n, dtype=float)
        out = np.zeros((nodes, len(METRICS), n))
        own_latency = np.zeros((nodes, n))
        for i in range(nodes):
            p = self.profiles[i]
            rel = load[i] / max(self.mean_load[i], 1e-6)  # load relative to its mean
            cpu = p.cpu0 + (p.cpu_mean - p.cpu0) * rel + rng.normal(0, 1.5, n)
            mem = p.mem0 * (1 + 0.03 * rel + np.cumsum(rng.normal(0, 0.0015, n)))
            net_in = p.kb_in * load[i] * (1 + rng.normal(0, 0.05, n))
            net_out = p.kb_out * load[i] * (1 + rng.normal(0, 0.05, n))
            disk = (p.disk0 + p.disk_per * load[i]) * (1 + rng.normal(0, 0.1, n))
            extra_ms = np.zeros(n)
            spiky = np.ones(n)
            # benign spikes: a GC pause or a cache flush, now and then, on one component
            for _ in range(rng.poisson(n / HZ / 60)):
                s = int(rng.integers(0, n))
                d = int(rng.integers(1, 5))
                cpu[s:s + d] += rng.uniform(10, 30)
                spiky[s:s + d] *= rng.uniform(1.5, 3)
            if i in effects:
                kind, amp, onset = effects[i]
                ramp = np.clip((t - onset) / (rng.uniform(2, 6) * HZ), 0, 1) * amp
                since = np.clip(t - onset, 0, None) / HZ  # seconds since onset
                if kind == "cpu_stress":
                    cpu = cpu + 55 * ramp + rng.normal(0, 3, n) * (ramp > 0)
                elif kind == "memory_leak":
                    mem = mem + p.mem0 * 0.025 * amp * since  # ~ +2.5 % of the base per second
                    cpu = cpu + 6 * ramp * (since / (since.max() + 1e-9))  # garbage collection works harder
                    extra_ms += p.svc_ms * 0.5 * ramp * since / (since.max() + 1e-9)
                elif kind == "packet_loss":
                    loss = 0.35 * ramp
                    net_in = net_in * (1 - loss * rng.uniform(0.5, 1.0, n))
                    net_out = net_out * (1 - loss * rng.uniform(0.5, 1.0, n))
                    retrans = rng.random(n) < 0.4 * ramp  # a retransmission timeout now and then
                    extra_ms += p.svc_ms * (3 * ramp + 8 * retrans)
                elif kind == "disk_stress":
                    busy = 3 * (p.disk0 + p.disk_per * self.mean_load[i]) + 150
                    disk = disk + busy * ramp * rng.uniform(0.6, 1.4, n)
                    cpu = cpu + 12 * ramp
                    extra_ms += p.svc_ms * 1.5 * ramp
            cpu = np.clip(cpu, 0.5, 100)
            util = np.minimum(cpu / 100, 0.92)
            own_latency[i] = (p.svc_ms * (1 + 0.5 * util / (1 - util)) + extra_ms) * spiky
            out[i, _I["cpu"]] = cpu
            out[i, _I["memory"]] = np.maximum(mem, 1)
            out[i, _I["net_in"]] = np.maximum(net_in, 0)
            out[i, _I["net_out"]] = np.maximum(net_out, 0)
            out[i, _I["disk_io"]] = np.maximum(disk, 0)
        # latency composes from callees to callers: part of each callee's latency is on the caller's path
        latency = np.zeros((nodes, n))
        for i in reversed(self.order):
            name = self.names[i]
            inner = sum((0.3 * min(self.fanout[(name, c)], 1.0) * latency[self.index[c]]
                         for c in self.topo.callees(name)), np.zeros(n))
            latency[i] = own_latency[i] + inner
        out[:, _I["latency"]] = latency * np.exp(rng.normal(0, 0.08, (nodes, n)))
        return out


def simulate(topology: Topology | None = None, incidents: int = 40, seed: int = 0, window: int = 60,
             scenarios: tuple[str, ...] = SCENARIOS, normal_share: float = 0.2,
             cancelled: kit.Cancel = None) -> Simulation:
    """`incidents` windows: a share without anomaly, the rest cycling through scenarios and kinds;
    `cancelled` is checked every window (thousands of them take seconds)."""
    topo = topology or webshop()
    sim = Simulator(topo, seed=seed, window=window)
    result = Simulation(topo, [])
    plan_rng = np.random.default_rng(seed + 7919)  # the plan is independent of how metrics consume the rng
    for i in range(incidents):
        kit.check(cancelled)
        if plan_rng.random() < normal_share:
            scenario, kind = None, None
        else:
            scenario = scenarios[int(plan_rng.integers(len(scenarios)))]
            kind = KINDS[int(plan_rng.integers(len(KINDS)))]
        values, truth = sim.incident(i, scenario, kind)
        result.values.append(values)
        result.incidents.append(truth)
    return result
