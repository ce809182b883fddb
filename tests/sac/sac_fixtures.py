"""Tiny shapes, observation spaces and synthetic env-shaped observations for the SAC tests."""
from __future__ import annotations

import os

import numpy as np
from gymnasium import spaces

from sac.config import AgentConfig, EncoderConfig

FRAMES, H, W, P, A = 2, 32, 40, 5, 2
IMAGE_SHAPE = (3 * FRAMES, H, W)
SCENE_SHAPE = (3, 36, 44)  # a second camera: one frame, half the step rate
R = 3  # a vector sensor's length


def image_space(shape: tuple[int, ...] = IMAGE_SHAPE) -> spaces.Box:
    return spaces.Box(0, 255, shape, np.uint8)


def vector_space(n: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, (n,), np.float32)


#: The reacher's observation, small: stacked wrist frames and proprioception.
SPACE = spaces.Dict({"image": image_space(), "proprioception": vector_space(P)})
#: Two cameras and a vector sensor: the wrist's 2 stacked frames, a scene camera, a range reading.
MULTI_SPACE = spaces.Dict({"image": image_space(), "scene": image_space(SCENE_SHAPE), "range": vector_space(R)})


def tiny_config(**overrides) -> AgentConfig:
    """A small agent that updates in milliseconds."""
    kwargs = dict(encoder=EncoderConfig(channels=8, strides=(2, 2, 1, 1)), hidden_sizes=(64, 64),
                  batch_size=32, rad_offset=0.05)
    kwargs.update(overrides)
    return AgentConfig(**kwargs)


def make_obs(step: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """A SPACE observation whose pixels and proprioception encode ``step``.

    Frame j of the stack is the frame of step ``step - FRAMES + 1 + j`` (newest last), so
    consecutive observations share frames as a frame-stacking env's do.
    """
    frames = [np.full((3, H, W), (step - FRAMES + 1 + j) % 251, np.uint8) for j in range(FRAMES)]
    if rng is not None:  # texture, so crops are distinguishable
        for f in frames:
            f[0] = rng.integers(0, 255, (H, W), dtype=np.uint8)
    return {"image": np.concatenate(frames), "proprioception": np.full(P, step, np.float32)}


def make_multi_obs(step: int) -> dict[str, np.ndarray]:
    """A MULTI_SPACE observation encoding ``step``: the scene camera shows frame ``step // 2``."""
    return {"image": make_obs(step)["image"], "scene": np.full(SCENE_SHAPE, (step // 2) % 251, np.uint8),
            "range": np.array([step, -step, 0.5 * step], np.float32)}


def own_segments() -> set[str]:
    """Shared-memory segments in /dev/shm created by this process."""
    return {n for n in os.listdir("/dev/shm") if n.startswith("rtrl_") and f"_{os.getpid()}_" in n}
