"""One layout for the Franka arm's state in a sensor buffer slot, shared by every arm backend.

The sim, ROS and libfranka communicators all publish a float64 vector of `STATE_DIM` = 21 numbers:

    ===========  =========  ========  =======================================================
    slice        name       unit      meaning
    ===========  =========  ========  =======================================================
    0:7          Q          rad       joint angles, Franka convention (as libfranka reports)
    7:14         DQ         rad/s     joint velocities
    14:17        EE_POS     m         Franka Hand TCP position in the robot base frame
    17:21        EE_QUAT    -         TCP orientation, unit quaternion (w, x, y, z)
    ===========  =========  ========  =======================================================

The slot's timestamp is time.monotonic() at which the state was measured (or simulated).

Example:
    >>> import numpy as np
    >>> s = FrankaState(q=np.zeros(7), dq=np.ones(7), ee_pos=np.zeros(3),
    ...                 ee_quat=np.array([1.0, 0, 0, 0]))
    >>> FrankaState.from_array(s.to_array()).dq.tolist() == [1.0] * 7
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_JOINTS = 7
STATE_DIM = 21
Q = slice(0, 7)
DQ = slice(7, 14)
EE_POS = slice(14, 17)
EE_QUAT = slice(17, 21)


@dataclass(frozen=True)
class FrankaState:
    """The arm's state at one instant.

    Attributes:
        q: joint angles, shape (7,), rad.
        dq: joint velocities, shape (7,), rad/s.
        ee_pos: TCP position in the base frame, shape (3,), m.
        ee_quat: TCP orientation, shape (4,), unit quaternion (w, x, y, z).
    """

    q: np.ndarray
    dq: np.ndarray
    ee_pos: np.ndarray
    ee_quat: np.ndarray

    def __post_init__(self) -> None:
        for name, size in (("q", 7), ("dq", 7), ("ee_pos", 3), ("ee_quat", 4)):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (size,):
                raise ValueError(f"FrankaState.{name} has shape {value.shape}, expected ({size},)")
            object.__setattr__(self, name, value)

    def to_array(self) -> np.ndarray:
        """The state in the shared layout: float64, shape (STATE_DIM,)."""
        out = np.empty(STATE_DIM)
        out[Q], out[DQ], out[EE_POS], out[EE_QUAT] = self.q, self.dq, self.ee_pos, self.ee_quat
        return out

    @classmethod
    def from_array(cls, array: np.ndarray) -> "FrankaState":
        """Parse a buffer slot (shape (STATE_DIM,)) back into a FrankaState (copies the data)."""
        array = np.asarray(array, dtype=np.float64)
        if array.shape != (STATE_DIM,):
            raise ValueError(
                f"Franka state array has shape {array.shape}, expected ({STATE_DIM},); "
                "see communicators/franka/state.py for the layout"
            )
        return cls(
            q=array[Q].copy(), dq=array[DQ].copy(),
            ee_pos=array[EE_POS].copy(), ee_quat=array[EE_QUAT].copy(),
        )
