"""Tiny shapes and synthetic env-shaped observations for the SAC tests."""
from __future__ import annotations

import os

import numpy as np

from sac.config import AgentConfig, EncoderConfig

FRAMES, H, W, P, A = 2, 32, 40, 5, 2
IMAGE_SHAPE = (3 * FRAMES, H, W)


def tiny_config(**overrides) -> AgentConfig:
    """A small agent that updates in milliseconds."""
    kwargs = dict(encoder=EncoderConfig(channels=8, strides=(2, 2, 1, 1)), hidden_sizes=(64, 64),
                  batch_size=32, rad_offset=0.05)
    kwargs.update(overrides)
    return AgentConfig(**kwargs)


def make_obs(step: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """An env-shaped observation whose pixels and proprioception encode ``step``.

    Frame j of the stack is the frame of step ``step - FRAMES + 1 + j`` (newest last), so
    consecutive observations share frames as a frame-stacking env's do.
    """
    frames = [np.full((3, H, W), (step - FRAMES + 1 + j) % 251, np.uint8) for j in range(FRAMES)]
    if rng is not None:  # texture, so crops are distinguishable
        for f in frames:
            f[0] = rng.integers(0, 255, (H, W), dtype=np.uint8)
    return {"image": np.concatenate(frames), "proprioception": np.full(P, step, np.float32)}


def own_segments() -> set[str]:
    """Shared-memory segments in /dev/shm created by this process."""
    return {n for n in os.listdir("/dev/shm") if n.startswith("rtrl_") and f"_{os.getpid()}_" in n}
