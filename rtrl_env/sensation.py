"""Packs a sensation (a flat array, or a dict of arrays and scalars) into one shared-buffer slot.

In multiprocess run mode the polling loop computes sensations in its own process and hands them
to the agent's process through a SharedBuffer. A dict sensation (an image plus joint states, say)
travels as one record of a numpy structured dtype, learned from a first sensation computed in the
parent, so every field keeps its own shape and dtype (uint8 frames stay uint8).

Example:
    >>> import numpy as np
    >>> codec = SensationCodec({"frame": np.zeros((2, 2), np.uint8), "count": 3})
    >>> back = codec.unpack(codec.pack({"frame": np.ones((2, 2), np.uint8), "count": 4.5}))
    >>> back["frame"].dtype, back["count"]
    (dtype('uint8'), 4.5)
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


class SensationCodec:
    """One sensation <-> one shared-buffer slot, with the layout of a first sensation.

    Args:
        first: a sensation as the task's ``sense`` returns it (dict or flat array).

    Attributes:
        slot_args: ``SharedBuffer`` arguments (``shape``, ``dtype``) of one slot.
    """

    def __init__(self, first: Any) -> None:
        if isinstance(first, dict):
            self.dtype: np.dtype | None = record_dtype(first)
            self.slot_args = {"shape": (), "dtype": self.dtype}
        else:
            self.dtype = None
            self.slot_args = {"shape": np.asarray(first, np.float64).shape or (1,), "dtype": np.float64}

    def pack(self, sensation: Any) -> np.ndarray:
        """The slot holding ``sensation``.

        Raises:
            ValueError: a dict sensation's keys changed since the first one.
        """
        if self.dtype is None:
            return np.asarray(sensation, np.float64)
        if set(sensation) != set(self.dtype.names):
            raise ValueError(f"sensation keys {sorted(sensation)} changed from the first sensation's "
                             f"{sorted(self.dtype.names)}")
        record = np.zeros((), self.dtype)
        for key, value in sensation.items():
            record[key] = value
        return record

    def unpack(self, slot: np.ndarray) -> Any:
        """The sensation in ``slot``; a dict's scalars come back as Python numbers."""
        if self.dtype is None:
            return slot
        out = {}
        for key in self.dtype.names:
            value = np.array(slot[key])
            out[key] = value.item() if value.ndim == 0 else value
        return out
