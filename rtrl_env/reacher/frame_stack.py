"""Stack the last k camera frames into one channel-first observation, at env-step rate.

A frame is uint8 (H, W, 3) RGB, as the camera communicators publish. The stacked observation is
uint8 (3k, H, W), oldest frame first: channels 3i..3i+2 hold frame i's R, G, B. HWC becomes CHW by
a real transpose; an earlier system used `reshape`, which keeps the bytes in place and scrambles
the pixels (see ../shared/docs/lessons-from-prior-systems.md).

Example:
    >>> import numpy as np
    >>> stack = FrameStack(k=3, height=2, width=4)
    >>> frame = np.zeros((2, 4, 3), np.uint8); frame[0, 1] = (10, 20, 30)
    >>> obs = stack.reset(frame)
    >>> obs.shape, obs[:, 0, 1].tolist()
    ((9, 2, 4), [10, 20, 30, 10, 20, 30, 10, 20, 30])
"""
from __future__ import annotations

import numpy as np


class FrameStack:
    """A ring of the last k frames, read out as one (3k, H, W) array.

    Args:
        k: number of frames, >= 1.
        height: frame height in pixels.
        width: frame width in pixels.

    Raises:
        ValueError: k, height or width is not a positive int.
    """

    def __init__(self, k: int, height: int, width: int) -> None:
        for name, value in (("k", k), ("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"FrameStack {name}={value!r}: expected an int >= 1")
        self.k, self.height, self.width = int(k), int(height), int(width)
        self._chw = np.zeros((self.k, 3, self.height, self.width), np.uint8)
        self._next = 0  # slot the next frame goes into (the oldest one)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the stacked observation, (3k, H, W)."""
        return (3 * self.k, self.height, self.width)

    def _check(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"frame has dtype {frame.dtype} and shape {frame.shape}; expected uint8 "
                f"({self.height}, {self.width}, 3) RGB; check the camera's width and height")
        return frame

    def reset(self, frame: np.ndarray) -> np.ndarray:
        """Fill all k slots with `frame` (the episode's first image) and return the stack.

        Args:
            frame: uint8 (H, W, 3).

        Returns:
            A new uint8 array (3k, H, W).
        """
        chw = self._check(frame).transpose(2, 0, 1)
        self._chw[:] = chw
        self._next = 0
        return self.observation()

    def push(self, frame: np.ndarray) -> np.ndarray:
        """Add the newest frame, dropping the oldest, and return the stack.

        Args:
            frame: uint8 (H, W, 3).

        Returns:
            A new uint8 array (3k, H, W), oldest frame first.
        """
        self._chw[self._next] = self._check(frame).transpose(2, 0, 1)
        self._next = (self._next + 1) % self.k
        return self.observation()

    def observation(self) -> np.ndarray:
        """The current stack as a new uint8 array (3k, H, W), oldest frame first."""
        order = [(self._next + i) % self.k for i in range(self.k)]
        return self._chw[order].reshape(self.shape)  # (k, 3, H, W) -> (3k, H, W): same order
