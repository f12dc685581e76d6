"""Encoding of descriptive job properties into fixed-size vectors, as Bellamy does.

Every property (machine type, data size, a job parameter...) becomes one vector of `DIM` values:
a leading category flag, then either the binary code of a whole number (data sizes, counts) or a
character n-gram hash of text (machine types, and numbers with a fraction such as 0.001, whose
integer part would say nothing). One shared auto-encoder then compresses every such vector.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIM = 40  # Bellamy's encoding size: 1 flag + 39 bits / hash buckets
BITS = DIM - 1
MAX_CODE = (1 << BITS) - 1


def binary_code(value: int) -> np.ndarray:
    """The low BITS bits of a non-negative whole number, most significant first."""
    v = min(max(int(value), 0), MAX_CODE)  # clamp: larger values share the top code rather than wrap
    return np.array([(v >> i) & 1 for i in range(BITS - 1, -1, -1)], dtype=np.float32)


@lru_cache(maxsize=1)
def _hasher():  # noqa: ANN202 - sklearn type
    from sklearn.feature_extraction.text import HashingVectorizer

    # Character 1-3-grams: "r4.xlarge" and "r4.2xlarge" share most buckets, so similar text stays close.
    return HashingVectorizer(analyzer="char", ngram_range=(1, 3), n_features=BITS, alternate_sign=False,
                             norm="l2", lowercase=True)


def hash_text(text: str) -> np.ndarray:
    return _hasher().transform([text]).toarray()[0].astype(np.float32)


def encode_value(value: str | float | int) -> np.ndarray:
    """One property value -> a DIM vector: [0, hash...] for text, [1, bits...] for whole numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number: float | None = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = None
    if number is not None and np.isfinite(number) and number >= 0 and float(number).is_integer():
        return np.concatenate([[1.0], binary_code(int(number))]).astype(np.float32)
    return np.concatenate([[0.0], hash_text(str(value).strip())]).astype(np.float32)
