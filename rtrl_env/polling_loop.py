"""The polling loop of multiprocess run mode, itself a communicator.

Seen from the agent's process it is just another device: its sensor buffer holds sensations
(computed from the communicators' buffers by the env's ``_compute_sensation_``), and its actuator
buffer takes actions (turned into actuator commands by the env's ``_compute_actuation_``). Being a
Communicator, it inherits crash reports with tracebacks, exit on parent death and graceful close.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from communicators.communicator import Communicator
from communicators.pacing import enable_realtime

if TYPE_CHECKING:
    from rtrl_env.base_env import RTRLBaseEnv


class PollingLoop(Communicator):
    """Moves sensor data into sensations and actions into actuator commands, in its own process.

    Args:
        env: the environment whose hooks it runs (pickled into the child under spawn).
        sensation_args: SharedBuffer arguments of one sensation slot.
        action_dim: length of the action vector.
        sleep_time: seconds to sleep when there is nothing new, bounding the added latency.
        start_method: as for Communicator.
    """

    def __init__(self, env: "RTRLBaseEnv", sensation_args: dict[str, Any], action_dim: int,
                 sleep_time: float, start_method: str | None = None) -> None:
        super().__init__(sensation_args, {"shape": (action_dim,), "dtype": "f8", "buffer_len": 2},
                         name=f"{type(env).__name__} polling loop", start_method=start_method)
        self.env = env
        self.sleep_time = sleep_time

    def _open_device(self) -> None:
        # The loop that carries actions to the actuators gets the env's real-time priority too.
        enable_realtime(self.env._realtime_priority, self.env._cpu_affinity)

    def _sensor_handler(self) -> None:
        sensation = self.env._poll_sensation()
        if sensation is None:
            time.sleep(self.sleep_time)
            return
        value, timestamp = sensation
        self.sensor_buffer.write(self.env._pack_sensation(value), timestamp=timestamp)

    def _actuator_handler(self) -> None:
        if not self.actuator_buffer.updated():
            time.sleep(self.sleep_time)
            return
        action, timestamp, index = self.actuator_buffer.read_update()
        self.env._actuate(action[0], float(timestamp[0]), int(index[0]))

    def _on_actuator_timeout(self) -> None:
        time.sleep(self.sleep_time)  # no action yet: nothing to actuate
