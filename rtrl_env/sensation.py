"""Packs a sensation (a flat array, or a dict of arrays and scalars) into one shared-buffer slot.

In multiprocess run mode the polling loop computes sensations in its own process and hands them
to the agent's process through a SharedBuffer. A dict sensation (an image plus joint states, say)
travels as one record of a numpy structured dtype, learned from a first sensation computed in the
parent, so every field keeps its own shape and dtype (uint8 frames stay uint8).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def record_dtype(sensation: dict[str, Any]) -> np.dtype:
    """The structured dtype that holds ``sensation``'s fields."""
    fields = []
    for key, value in sensation.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "iub" and arr.ndim == 0 and not isinstance(value, np.generic):
            arr = arr.astype(np.float64)  # a Python number: later values may be fractional (a reward of 0, then 0.5)
        if arr.dtype == object:
            raise TypeError(f"sensation field {key!r} is not numeric ({type(value).__name__}); "
                            "multiprocess run mode can only share arrays and numbers")
        fields.append((key, arr.dtype, arr.shape))
    return np.dtype(fields)


def pack(sensation: dict[str, Any], dtype: np.dtype) -> np.ndarray:
    """A 0-d record of ``dtype`` holding ``sensation``."""
    if set(sensation) != set(dtype.names):
        raise ValueError(f"sensation keys {sorted(sensation)} changed from the first sensation's {sorted(dtype.names)}")
    record = np.zeros((), dtype)
    for key, value in sensation.items():
        record[key] = value
    return record


def unpack(record: np.ndarray) -> dict[str, Any]:
    """The dict that :func:`pack` packed; scalars come back as Python numbers."""
    out = {}
    for key in record.dtype.names:
        value = np.array(record[key])
        out[key] = value.item() if value.ndim == 0 else value
    return out
