"""Node features from a metrics window: what each component's series looks like relative to its own
start of the window, so one model serves components of any scale.

The first quarter of the window is the reference (a window should begin before the anomaly). Per
metric, three channels: a robust z-score against the reference, the log-ratio to the reference level,
and the log level itself (a database's disk io is high at rest, a cache's is not).
"""

from __future__ import annotations

import numpy as np

CHANNELS_PER_METRIC = 3


def node_features(values: np.ndarray) -> np.ndarray:
    """values [N, M, W] -> features [N, 3M, W], float32, bounded."""
    x = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
    ref = x[..., : max(4, x.shape[-1] // 4)]
    med = np.median(ref, axis=-1, keepdims=True)
    mad = np.median(np.abs(ref - med), axis=-1, keepdims=True) * 1.4826
    # The floor (5 % of the level) keeps an almost flat reference from turning noise into huge z-scores.
    z = np.clip((x - med) / (mad + 0.05 * med + 1e-3), -20, 20) / 5
    ratio = np.clip(np.log1p(x) - np.log1p(med), -5, 5)
    level = np.log1p(x) / 5
    return np.concatenate([z, ratio, level], axis=1).astype(np.float32)
