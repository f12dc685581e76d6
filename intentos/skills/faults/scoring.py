"""How well a localizer did on incidents with known origins: per node classes (macro-F1, multi-class and
binary) and per incident rankings (PR@k, MAP), as in the root-cause localization literature.

PR@k: of the true origins, the share found in the top k of the ranking (out of min(k, origins)),
averaged over anomalous incidents. MAP: the mean over anomalous incidents of the average precision of
the ranking (with one origin, 1 / its rank).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from sklearn.metrics import average_precision_score, f1_score


class Scores(BaseModel):
    incidents: int
    anomalous_incidents: int
    macro_f1: float
    binary_f1: float
    pr_at: dict[int, float]
    map: float


def score(labels: list[np.ndarray], predicted: list[np.ndarray], anomaly: list[np.ndarray],
          ks: tuple[int, ...] = (1, 2, 3)) -> Scores:
    """labels/predicted: class per node per incident; anomaly: per node score (higher = more likely origin)."""
    y = np.concatenate(labels)
    p = np.concatenate(predicted)
    classes = np.unique(np.concatenate([y, p]))
    macro = f1_score(y, p, labels=classes, average="macro", zero_division=0)
    binary = f1_score(y > 0, p > 0, labels=[False, True], average="macro", zero_division=0)
    hits = {k: [] for k in ks}
    aps = []
    for truth, s in zip(labels, anomaly, strict=True):
        origins = truth > 0
        if not origins.any():
            continue
        ranked = np.argsort(-s, kind="stable")
        for k in ks:
            hits[k].append(origins[ranked[:k]].sum() / min(k, origins.sum()))
        aps.append(average_precision_score(origins, s))
    mean = lambda xs: float(np.mean(xs)) if xs else 0.0  # noqa: E731
    return Scores(incidents=len(labels), anomalous_incidents=len(aps), macro_f1=float(macro), binary_f1=float(binary),
                  pr_at={k: mean(v) for k, v in hits.items()}, map=mean(aps))
