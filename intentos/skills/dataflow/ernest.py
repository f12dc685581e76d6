"""Ernest (Venkataraman et al., NSDI 2016): runtime = θ0 + θ1·size/m + θ2·log m + θ3·m, fit by NNLS.

The terms model a fixed serial part, perfectly parallel work, tree-shaped aggregation and per-machine
overhead; non-negative weights keep every term physically meaningful. It is the baseline every
Bellamy prediction is compared against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel


def ernest_features(scaleouts: Sequence[float] | np.ndarray, size: float = 1.0) -> np.ndarray:
    m = np.asarray(scaleouts, dtype=float)
    return np.column_stack([np.ones_like(m), size / m, np.log(m), m])


class Ernest(BaseModel):
    """A fitted Ernest model of one context (one data size)."""

    theta: list[float]
    size: float = 1.0
    residual: float = 0.0

    @classmethod
    def fit(cls, scaleouts: Sequence[float], runtimes: Sequence[float], size: float = 1.0) -> Ernest:
        from scipy.optimize import nnls

        if len(scaleouts) != len(runtimes) or not len(scaleouts):
            raise ValueError("Ernest needs as many runtimes as scale-outs, at least one")
        x = ernest_features(scaleouts, size)
        y = np.asarray(runtimes, dtype=float)
        # Scale columns to unit norm: NNLS is exact either way, but conditioning is better.
        norms = np.linalg.norm(x, axis=0)
        norms[norms == 0] = 1.0
        theta, residual = nnls(x / norms, y)
        return cls(theta=(theta / norms).tolist(), size=size, residual=float(residual))

    def predict(self, scaleouts: Sequence[float] | np.ndarray) -> np.ndarray:
        return ernest_features(scaleouts, self.size) @ np.asarray(self.theta)
