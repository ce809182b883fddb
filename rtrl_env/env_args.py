"""RTRLBaseEnv's constructor checks: each bad argument named, with its value and the fix."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator
from rtrl_env.task import Task

RUN_MODES = ("singlethread", "multithread", "multiprocess")


def check_env_args(task: Task, communicators: Mapping[str, Communicator], dt: float, run_mode: str,
                   max_episode_steps: int | None) -> None:
    """Raises TypeError or ValueError naming the first bad argument of an RTRLBaseEnv."""
    if not isinstance(task, Task):
        raise TypeError(f"task must be a rtrl_env.task.Task, got {type(task).__name__}")
    for attr in ("observation_space", "action_space"):
        if not isinstance(getattr(task, attr, None), spaces.Space):
            raise TypeError(f"{type(task).__name__}.{attr} must be a gymnasium space")
    for name, comm in communicators.items():
        if not isinstance(comm, Communicator):
            raise TypeError(f"communicator {name!r} is a {type(comm).__name__}, not a communicators.Communicator")
    if run_mode not in RUN_MODES:
        raise ValueError(f"run_mode={run_mode!r}; choose one of {RUN_MODES}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r} must be a positive number of seconds, e.g. dt=0.04")
    if max_episode_steps is not None and not (isinstance(max_episode_steps, (int, np.integer))
                                              and max_episode_steps >= 1):
        raise ValueError(f"max_episode_steps={max_episode_steps!r} must be a positive integer or None")


def window_lengths(communicators: Mapping[str, Communicator], windows: Mapping[str, int]) -> dict[str, int]:
    """Window length per sensor communicator (1 unless ``windows`` says otherwise), checked.

    Raises:
        ValueError: ``windows`` names a non-communicator, or a length outside 1..buffer_len.
    """
    unknown = sorted(set(windows) - set(communicators))
    if unknown:
        raise ValueError(f"windows names {unknown}, which are not communicators ({sorted(communicators)})")
    lengths = {}
    for name, comm in communicators.items():
        if not comm.use_sensor:
            continue
        n = windows.get(name, 1)
        if not (isinstance(n, (int, np.integer)) and 1 <= n <= comm.sensor_buffer.buffer_len):
            raise ValueError(f"communicator {name!r}: window {n!r} must be an int between 1 and its sensor "
                             f"buffer_len={comm.sensor_buffer.buffer_len}")
        lengths[name] = int(n)
    return lengths
