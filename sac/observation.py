"""Which observation keys are images and which are vectors, read off a Gymnasium ``Dict`` space.

The replay buffer and the agent both build themselves from an :class:`ObservationLayout`, so a new
sensor is a new key in the env's observation space and nothing else (SB3's ``DictReplayBuffer``
does the same, ``stable_baselines3/common/buffers.py``).

The rule, per key of the ``Dict`` space:

- **image**: a ``Box`` of dtype uint8 and rank 3, channel-first ``(C, H, W)`` with ``C = 3 * k``:
  k stacked RGB frames, oldest first (k = 1 for a single frame). The replay buffer stores each
  frame once; the agent gives each image key a convolutional encoder and random crops.
- a uint8 rank-3 ``Box`` whose ``C`` is not a multiple of 3 (grey or RGBA frames, or
  channels-last ``(H, W, 3)``) is refused, naming the key: convert it to RGB channel-first.
- **vector**: any other ``Box`` (any dtype and rank: a 3-float range reading, a 4 x 6 window of
  force/torque samples). Stored as float32, flattened by the agent and concatenated with the
  other vector keys, in the space's key order.
- any other space (``Discrete``, a nested ``Dict``, ...) is refused, naming the key.

Key order is the space's (a Gymnasium ``Dict`` built from a plain dict sorts its keys).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces


@dataclass
class ObservationLayout:
    """Image and vector keys of a ``Dict`` observation space, with their shapes.

    Build it with :meth:`from_space`; it pickles (it crosses to the learner process).
    """

    images: dict[str, tuple[int, int, int]]
    """Image key -> (3 * frames, H, W) of its uint8 observation."""
    vectors: dict[str, tuple[int, ...]]
    """Vector key -> shape of its observation (stored as float32)."""

    @classmethod
    def from_space(cls, space: spaces.Space) -> ObservationLayout:
        """Classifies each key of ``space`` (rule in the module docstring).

        Raises:
            ValueError: ``space`` is not a ``Dict``, or a key is neither an image nor a vector;
                the message names the key, its space and the fix.
        """
        if not isinstance(space, spaces.Dict):
            raise ValueError(f"observation space {space} is not a gymnasium.spaces.Dict; wrap it, e.g. "
                             f"spaces.Dict({{'state': space}}), and the observations likewise")
        images: dict[str, tuple[int, int, int]] = {}
        vectors: dict[str, tuple[int, ...]] = {}
        for key, sub in space.spaces.items():
            if not isinstance(sub, spaces.Box):
                raise ValueError(f"observation key {key!r} has space {sub}; only Box spaces can be learned "
                                 f"from (uint8 (3k, H, W) images or float vectors)")
            shape = tuple(int(s) for s in sub.shape)
            if sub.dtype == np.uint8 and len(shape) == 3:
                if shape[0] % 3 != 0 or min(shape) < 1:
                    raise ValueError(f"observation key {key!r} is a uint8 image of shape {shape}: expected "
                                     f"channel-first stacked RGB frames (3 * frames, H, W); convert grey, "
                                     f"RGBA or (H, W, 3) frames to (3, H, W)")
                images[key] = shape  # type: ignore[assignment]
            else:
                if int(np.prod(shape)) < 1:
                    raise ValueError(f"observation key {key!r} has an empty shape {shape}")
                vectors[key] = shape
        if not images and not vectors:
            raise ValueError("observation space has no keys to learn from")
        return cls(images, vectors)

    @property
    def keys(self) -> list[str]:
        """Every key, images first, each group in the space's order."""
        return [*self.images, *self.vectors]

    @property
    def vector_dim(self) -> int:
        """Length of all vector keys flattened and concatenated."""
        return sum(int(np.prod(s)) for s in self.vectors.values())

    def describe(self) -> dict[str, str]:
        """Key -> ``"image uint8 (9, 48, 64)"`` / ``"vector float32 (16,)"``: for messages and files."""
        return {**{k: f"image uint8 {s}" for k, s in self.images.items()},
                **{k: f"vector float32 {s}" for k, s in self.vectors.items()}}

    def differences(self, other: Mapping[str, str]) -> list[str]:
        """What differs between this layout and ``other`` (another layout's :meth:`describe`).

        Returns:
            One phrase per differing key, e.g. ``"'wrist_range': vector float32 (3,) there, absent
            here"``; empty when the layouts match.
        """
        mine = self.describe()
        out = []
        for key in [*other, *(k for k in mine if k not in other)]:
            theirs, ours = other.get(key, "absent"), mine.get(key, "absent")
            if theirs != ours:
                out.append(f"{key!r}: {theirs} there, {ours} here")
        return out

    def check(self, obs: Mapping[str, np.ndarray], what: str) -> None:
        """Raises ValueError naming ``what`` (e.g. ``"obs"``) and the key if ``obs`` does not fit.

        Images must be uint8 with their exact shape; vectors must have their shape (any dtype).
        """
        if obs.keys() != set(self.keys):
            missing = [k for k in self.keys if k not in obs]
            extra = [k for k in obs if k not in self.images and k not in self.vectors]
            raise ValueError(f"{what} has keys {sorted(obs)}, expected the observation space's {self.keys} "
                             f"(missing {missing}, unknown {extra})")
        for key, shape in self.images.items():
            image = obs[key]
            if np.shape(image) != shape or getattr(image, "dtype", None) != np.uint8:
                raise ValueError(f"{what}[{key!r}] has shape {np.shape(image)} dtype "
                                 f"{getattr(image, 'dtype', type(image).__name__)}, expected {shape} uint8 "
                                 f"(channel-first stacked frames)")
        for key, shape in self.vectors.items():
            if np.shape(obs[key]) != shape:
                raise ValueError(f"{what}[{key!r}] has shape {np.shape(obs[key])}, expected {shape}")
