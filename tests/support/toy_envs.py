"""Small real environments for testing the core: toy tasks over the toy communicators.

Module-level classes so a polling loop started with spawn can unpickle them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rtrl_env import RTRLBaseEnv
from rtrl_env.task import Task
from tests.support.toy_communicators import FRAME_SHAPE, CounterSensor, FrameSensor

ACTION_DIM = 2


class FlatToyTask(Task):
    """One CounterSensor ``toy``; a flat observation, the action echoed back by the device.

    Observation (6,): ``[newest index, count, open_pid, timeouts, command echo (2)]``. Reward:
    ``count``. Stop command: zeros. ``resets`` counts reset calls (agent's process).
    """

    OBS_DIM = 1 + CounterSensor.HEADER + ACTION_DIM

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.OBS_DIM,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.resets = 0

    def sense(self, windows):
        window = windows["toy"]
        return np.concatenate([[window.indices[-1]], window.data[-1]])

    def actuate(self, action):
        return {"toy": action}

    def reset(self, devices, rng):
        self.resets += 1

    def reward(self, sensation, action):
        return float(sensation[1])

    def stop_commands(self):
        return {"toy": np.zeros(ACTION_DIM)}


def flat_toy_env(run_mode: str = "multiprocess", dt: float = 0.02, start_method: str | None = None,
                 comm_class: type = CounterSensor, comm_kwargs: dict[str, Any] | None = None,
                 **env_kwargs: Any) -> RTRLBaseEnv:
    """A FlatToyTask over one ``comm_class`` device named ``toy`` (window of 2 slots)."""
    kwargs = {"rate_hz": 200.0, "dim": ACTION_DIM, "start_method": start_method, **(comm_kwargs or {})}
    return RTRLBaseEnv(FlatToyTask(), {"toy": comm_class(**kwargs)}, dt=dt, windows={"toy": 2},
                       run_mode=run_mode, start_method=start_method, **env_kwargs)


class DictToyTask(Task):
    """A frame sensor ``camera`` and a CounterSensor ``arm``; a Dict observation.

    Observation: ``image`` (120, 160, 3) uint8 and ``state`` (5,) float64 (the CounterSensor slot).
    Reward: the count.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, FRAME_SHAPE, np.uint8),
            "state": spaces.Box(-np.inf, np.inf, (CounterSensor.HEADER + ACTION_DIM,), np.float64),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    def sense(self, windows):
        return {"image": windows["camera"].data[-1], "state": windows["arm"].data[-1]}

    def actuate(self, action):
        return {"arm": action}

    def reward(self, sensation, action):
        return float(sensation["state"][0])


def dict_toy_env(run_mode: str = "multiprocess", dt: float = 0.02, start_method: str | None = None) -> RTRLBaseEnv:
    """A DictToyTask over a FrameSensor and a CounterSensor."""
    devices = {"camera": FrameSensor(start_method=start_method),
               "arm": CounterSensor(dim=ACTION_DIM, start_method=start_method)}
    return RTRLBaseEnv(DictToyTask(), devices, dt=dt, run_mode=run_mode, start_method=start_method)


def env_pids(env: RTRLBaseEnv) -> list[int]:
    """Pids of the env's communicator processes and its polling loop (started ones only)."""
    return [p.pid for p in env.processes]
