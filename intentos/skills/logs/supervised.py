"""A supervised line classifier: TF-IDF over model tokens + logistic regression, learned from labelled lines.

The classic supervised baseline of log anomaly detection (He et al., ISSRE 2016, "Experience Report:
System Log Analysis for Anomaly Detection"). Where labels exist (a BGL/LogHub log, or lines labelled
from failure windows by PULL) it learns which words go with failures, and words generalize across
message types that never occurred in training: on BGL_2k split chronologically, the second half's
alerts are all of categories absent from the first half, and this still finds half of them.

The settings are fixed up front (unigrams, C=1, balanced class weights, threshold 0.5), never chosen on
test data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from intentos.skills.logs.parsing import tokenize

THRESHOLD = 0.5  # a probability: no calibration on the data scored


class SupervisedDetector:
    """fit(messages, labels) on labelled lines (1 anomalous, 0 normal), then score(messages) -> P(anomalous)."""

    threshold = THRESHOLD

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._vectorizer: Any = None
        self._model: Any = None

    def fit(self, messages: Sequence[str], labels: Sequence[int]) -> SupervisedDetector:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(messages) != len(labels):
            raise ValueError(f"{len(messages)} messages but {len(labels)} labels")
        y = np.asarray(labels, dtype=int)
        if not (y == 1).any() or not (y == 0).any():
            raise ValueError("the supervised detector needs both anomalous and normal labelled lines to learn from, "
                           f"got {int((y == 1).sum())} anomalous and {int((y == 0).sum())} normal")
        self._vectorizer = TfidfVectorizer(analyzer=tokenize, sublinear_tf=True)
        features = self._vectorizer.fit_transform(messages)
        self._model = LogisticRegression(class_weight="balanced", max_iter=1000, random_state=self.seed)
        self._model.fit(features, y)
        return self

    def score(self, messages: Sequence[str]) -> np.ndarray:
        if self._model is None:
            raise ValueError("the supervised detector is not fitted: call fit() with labelled lines first")
        if not messages:
            return np.zeros(0)
        return self._model.predict_proba(self._vectorizer.transform(messages))[:, 1]

    def predict(self, messages: Sequence[str]) -> np.ndarray:
        return self.score(messages) > self.threshold
