"""The non-graph baseline: one isolation forest per component (scikit-learn), fitted on windows without
anomalies, each window summarised per metric; the kind of anomaly is read off the metric that moved most.

It sees every component alone, so a component that only suffers from a neighbour's anomaly looks as
anomalous as the origin: what the graph models are meant to do better.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest

from intentos.skills.faults.features import node_features
from intentos.skills.faults.metrics import METRICS
from intentos.skills.faults.simulator import CLASSES

_M = len(METRICS)
# Which metric's move names which anomaly: (metric, feature block of summarize, sign).
# 0: mean z after the reference, 3: trend (a leak keeps rising), the network falls when packets drop.
_SIGNATURE = {"cpu_stress": ("cpu", 0, 1), "memory_leak": ("memory", 3, 1), "packet_loss": ("net_out", 0, -1),
              "disk_stress": ("disk_io", 0, 1)}


def summarize(values: np.ndarray) -> np.ndarray:
    """[N, M, W] -> [N, 4M]: per metric, after the reference quarter: mean and max |z|, mean log-ratio, and
    the z-score's trend (a leak rises steadily)."""
    f = node_features(values)
    z, ratio = f[:, :_M], f[:, _M:2 * _M]
    late = slice(f.shape[-1] // 4, None)
    zl = z[..., late]
    trend = zl[..., -max(2, zl.shape[-1] // 4):].mean(-1) - zl[..., : max(2, zl.shape[-1] // 4)].mean(-1)
    return np.concatenate([zl.mean(-1), np.abs(zl).max(-1), ratio[..., late].mean(-1), trend], axis=1)


@dataclass
class IsolationBaseline:
    """fit(names, normal windows) then score/predict windows of the same components."""

    seed: int = 0
    trees: int = 50
    # Scores are in units of the component's normal spread: 0 at the median of its normal windows, 1 at
    # their 99th percentile. Isolation-forest scores saturate, so a clear anomaly lands near 0.5-0.9.
    threshold: float = 0.5  # about 7 % of normal components flagged, most clear anomalies
    forests: dict[str, tuple[IsolationForest, float, float]] = field(default_factory=dict)

    def fit(self, names: list[str], windows: list[np.ndarray]) -> IsolationBaseline:
        feats = np.stack([summarize(w) for w in windows])  # [incidents, N, F]
        pooled = feats.reshape(-1, feats.shape[-1])
        for i, name in enumerate([*names, "*"]):
            x = pooled if name == "*" else feats[:, i]
            forest = IsolationForest(n_estimators=self.trees, random_state=self.seed).fit(x)
            s = -forest.score_samples(x)
            mid, high = float(np.median(s)), float(np.quantile(s, 0.99))
            self.forests[name] = (forest, mid, max(high - mid, 1e-6))
        return self

    def predict(self, names: list[str], windows: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per window: (class per component, anomaly score per component, 1 = its normal 99th percentile).
        Windows are scored together, one forest call per component, as a forest call has a fixed cost."""
        feats = np.stack([summarize(w) for w in windows])  # [K, N, F]
        scores = np.empty(feats.shape[:2])
        for i, name in enumerate(names):
            forest, mid, spread = self.forests.get(name) or self.forests["*"]
            scores[:, i] = (-forest.score_samples(feats[:, i]) - mid) / spread
        kinds = list(_SIGNATURE)
        out = []
        for f, score in zip(feats, scores, strict=True):
            sig = np.stack([sign * f[:, block * _M + METRICS.index(m)] for m, block, sign in _SIGNATURE.values()],
                           axis=1)
            cls = np.array([CLASSES.index(kinds[k]) for k in sig.argmax(1)])
            out.append((np.where(score > self.threshold, cls, 0), score))
        return out
