"""Small real environments on RTRLBaseEnv for testing the core, in the two hook styles.

Module-level classes so a polling loop started with spawn can unpickle them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rtrl_env import RTRLBaseEnv
from tests.support.toy_communicators import FRAME_SHAPE, CounterSensor, FrameSensor

ACTION_DIM = 2


class FlatToyEnv(RTRLBaseEnv):
    """SenseAct style: one CounterSensor, a flat sensation ``[obs..., reward, done]``.

    Observation (6,): ``[newest index, count, open_pid, timeouts, command echo (2)]``. Reward: ``count``.
    """

    OBS_DIM = 1 + CounterSensor.HEADER + ACTION_DIM

    def __init__(self, run_mode: str = "multiprocess", dt: float = 0.02, start_method: str | None = None,
                 comm_class: type = CounterSensor, comm_kwargs: dict[str, Any] | None = None, **env_kwargs: Any) -> None:
        kwargs = {"rate_hz": 200.0, "dim": ACTION_DIM, "start_method": start_method, **(comm_kwargs or {})}
        setups = {"toy": {"Communicator": comm_class, "kwargs": kwargs, "num_sensor_packets": 2}}
        super().__init__(setups, ACTION_DIM, self.OBS_DIM, run_mode=run_mode, dt=dt,
                         start_method=start_method, **env_kwargs)
        self.resets = 0

    def _compute_sensation_(self, name, sensor_window, timestamp_window, index_window):
        newest = sensor_window[-1]
        return np.concatenate([[index_window[-1]], newest, [newest[0], 0.0]])

    def _compute_actuation_(self, action, timestamp, index):
        self._actuation_packet_["toy"][:] = action

    def _reset_(self):
        self.resets += 1


class DictToyEnv(RTRLBaseEnv):
    """All-at-once style: a frame sensor and a CounterSensor, a Dict observation.

    Observation: ``image`` (120, 160, 3) uint8 and ``state`` (5,) float64 (the CounterSensor slot).
    With ``with_reward`` the sensation also carries ``reward`` (the count) and ``done`` (False),
    which are not observations.
    """

    def __init__(self, run_mode: str = "multiprocess", dt: float = 0.02, start_method: str | None = None,
                 with_reward: bool = False) -> None:
        self.with_reward = with_reward
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, FRAME_SHAPE, np.uint8),
            "state": spaces.Box(-np.inf, np.inf, (CounterSensor.HEADER + ACTION_DIM,), np.float64),
        })
        setups = {
            "camera": {"Communicator": FrameSensor, "kwargs": {"start_method": start_method}},
            "arm": {"Communicator": CounterSensor, "kwargs": {"dim": ACTION_DIM, "start_method": start_method}},
        }
        super().__init__(setups, ACTION_DIM, None, run_mode=run_mode, dt=dt, start_method=start_method)

    def _compute_sensation_(self, name_to_sensor_window):
        state = name_to_sensor_window["arm"][0][-1]
        sensation = {"image": name_to_sensor_window["camera"][0][-1], "state": state}
        if self.with_reward:
            sensation.update(reward=float(state[0]), done=False)
        return sensation

    def _compute_actuation_(self, action, timestamp, index):
        self._actuation_packet_["arm"][:] = action

    def _reset_(self):
        pass


def env_pids(env: RTRLBaseEnv) -> list[int]:
    """Pids of the env's communicator processes and its polling loop (started ones only)."""
    procs = list(env._all_comms.values())
    if env._polling_loop is not None:
        procs.append(env._polling_loop)
    return [p.pid for p in procs if p.pid is not None]
