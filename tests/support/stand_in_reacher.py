"""TEST FIXTURE: a small gymnasium env with the visual reacher's spaces, for testing a training
session's own logic without the robot's processes.

``StandInReacher``: a Dict of uint8 (3k, H, W) frames and float32 proprioception (16), actions in
[-1, 1]^2, episodes of ``episode_steps`` cycles paced to ``dt`` by sleeping. A red square moves with
the actions; the reward is its closeness to the image centre. The updaters, learners, replay
buffers and checkpoints the sessions use with it are the real ones.
"""
from __future__ import annotations

import time

import gymnasium
import numpy as np
from gymnasium import spaces


class StandInReacher(gymnasium.Env):
    """Test fixture (see module docstring): a red square the actions move; reward = closeness to centre."""

    def __init__(self, width: int, height: int, frames: int, dt: float, episode_steps: int = 25):
        self.w, self.h, self.k, self.dt, self.episode_steps = width, height, frames, dt, episode_steps
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (3 * frames, height, width), np.uint8),
            "proprioception": spaces.Box(-np.inf, np.inf, (16,), np.float32)})
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.freshness_budgets = {"camera": 0.2}  # one sensor stream, as RTRLBaseEnv reports them
        self.closed = False

    def _frame(self) -> np.ndarray:
        frame = np.zeros((3, self.h, self.w), np.uint8)
        x, y = (self.pos * [self.w / 2, self.h / 2] + [self.w / 2, self.h / 2]).astype(int)
        frame[0, max(0, y - 3):y + 3, max(0, x - 3):x + 3] = 255
        return frame

    def _obs(self) -> dict:
        return {"image": np.concatenate(self.stack),
                "proprioception": np.concatenate([self.pos, np.zeros(12), self.last]).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, 2)
        self.last, self.t = np.zeros(2, np.float32), 0
        self.stack = [self._frame()] * self.k
        self.deadline = time.monotonic()
        self._last = float("nan")
        return self._obs(), {}

    def step(self, action):
        self.deadline += self.dt
        time.sleep(max(0.0, self.deadline - time.monotonic()))
        now = time.monotonic()
        timing = {"period": now - getattr(self, "_last", float("nan")), "ages": {"camera": 0.005 * (self.t % 3)}}
        self._last = now
        self.pos = np.clip(self.pos + 0.1 * np.asarray(action), -1, 1)
        self.last, self.t = np.asarray(action, np.float32), self.t + 1
        self.stack = self.stack[1:] + [self._frame()]
        reward = float(self.dt * 4 * np.exp(-10 * np.sum(self.pos ** 2)))
        return self._obs(), reward, False, self.t >= self.episode_steps, {"timing": timing}

    def close(self):
        self.closed = True
