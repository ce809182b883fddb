"""The visual reacher's task: what it reads, what it sends, its reward and its episode start.

A :class:`~rtrl_env.task.Task` over the reacher's devices, named ``robot`` (the arm: 21-float
state in, 7 joint velocities out), ``camera`` (uint8 H x W x 3 frames), ``target`` (its position,
and an episode request in) and one name per extra sensor. The env card is in
``rtrl_env/reacher/env.py``; the process each hook runs in is the protocol's (rtrl_env/task.py).
"""
from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from communicators.franka.state import DQ, EE_POS, EE_QUAT, NUM_JOINTS, Q
from rtrl_env.reacher.config import FrankaVisualReacherConfig
from rtrl_env.reacher.frame_stack import FrameStack
from rtrl_env.reacher.ground_truth import WristCameraGeometry
from rtrl_env.reacher.homing import HomingController
from rtrl_env.reacher.image_reward import image_reward
from rtrl_env.reacher.joints import ActionScaler, jittered_home, proprioception
from rtrl_env.task import Devices, SensorWindow, Task

# q within +-pi rad, dq within +-10 rad/s (the proprioception's bounds before the previous action).
_Q_DQ_HIGH = np.concatenate([np.full(NUM_JOINTS, np.pi), np.full(NUM_JOINTS, 10.0)])


class ReacherTask(Task):
    """Centre the red target in the wrist camera's image, from pixels and joint states.

    Args:
        config: the reacher's settings.
        geometry: the wrist camera's pose on the TCP, for the ground-truth camera-axis distance
            in ``info``; None where the target's true position is unknown (real set-ups).
    """

    def __init__(self, config: FrankaVisualReacherConfig, geometry: WristCameraGeometry | None = None) -> None:
        self.config = config
        self.geometry = geometry
        self.scaler = ActionScaler(config.joints, config.max_joint_velocity, config.env_id)
        self.frames = FrameStack(config.frame_stack, config.image_height, config.image_width)
        self.homing = HomingController(config.homing)
        n = self.scaler.dim
        high = np.concatenate([_Q_DQ_HIGH, np.ones(n)]).astype(np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, self.frames.shape, np.uint8),
            "proprioception": spaces.Box(-high, high, dtype=np.float32),
            **{key: sensor.space for key, sensor in config.extra_sensors.items()},
        })
        self.last_frame: np.ndarray | None = None
        """The newest camera frame observed (agent's process), for ``render``."""

    # ===== Polling loop =====

    def sense(self, windows: Mapping[str, SensorWindow]) -> dict[str, Any]:
        """Newest frame, arm state and target position, and each extra sensor's observation."""
        camera = windows["camera"]
        sensation = {"frame": np.array(camera.data[-1]), "frame_time": float(camera.timestamps[-1]),
                     "state": np.array(windows["robot"].data[-1])}
        if "target" in windows:
            sensation["target"] = np.array(windows["target"].data[-1])
        for key, sensor in self.config.extra_sensors.items():
            window = windows[key]
            sensation[key] = sensor.observe(window.data, window.timestamps)
        return sensation

    def actuate(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Joint velocities for the arm (rad/s); the target gets its requests from ``reset`` only."""
        return {"robot": self.scaler.to_joint_velocity(action)}

    # ===== Agent's process =====

    def reset(self, devices: Devices, rng: np.random.Generator) -> None:
        """Moves the arm home (with jitter), requests a new target and waits for a frame of it."""
        goal = jittered_home(rng, self.config.joints, self.config.home_jitter, np.array(self.config.home_pose))

        def read_state() -> tuple[np.ndarray, np.ndarray]:
            devices.check_fresh("robot")  # a hung arm stops the reset at once, not after a stall
            state, _ = devices.latest("robot")
            return state[Q], state[DQ]

        self.homing.run(goal, read_state=read_state, send=lambda dq: devices.send("robot", dq),
                        wait=lambda: devices.sleep(self.config.homing.period_s))
        self._request_new_target(devices, rng)

    def _request_new_target(self, devices: Devices, rng: np.random.Generator) -> None:
        requested, timeout = time.monotonic(), self.config.new_target_timeout_s
        if devices["target"].actuator_buffer is not None:
            # A number drawn from the seeded generator: reset(seed=s) gives the same target
            # whenever the target's own config is seeded.
            devices.send("target", np.array([float(rng.integers(1, 2**31))]))
        # 30 ms: the target's actuator and sensor threads (100 Hz) have both ticked since.
        moved = devices.wait_for_data("target", requested + 0.03, timeout, "target position")
        devices.wait_for_data("camera", moved, timeout, "frame showing the new target")

    def observe(self, sensation: dict[str, Any], action: np.ndarray | None) -> dict[str, np.ndarray]:
        """Stacked frames (zeros with ``blank_image``), proprioception with the previous action
        (zeros after a reset), extras."""
        frame = sensation["frame"]
        self.last_frame = frame
        image = self.frames.reset(frame) if action is None else self.frames.push(frame)
        if self.config.blank_image:
            image = np.zeros_like(image)
        previous = np.zeros(self.scaler.dim, np.float32) if action is None else np.asarray(action, np.float32)
        state = sensation["state"]
        obs = {"image": image, "proprioception": proprioception(state[Q], state[DQ], previous)}
        for key in self.config.extra_sensors:
            obs[key] = sensation[key]
        return obs

    def reward(self, sensation: dict[str, Any], action: np.ndarray) -> float:
        """``r_image * dt``: the image reward of the newest frame, in seconds of target centred."""
        return image_reward(sensation["frame"], self.config.reward) * self.config.dt

    def info(self, sensation: dict[str, Any], reward: float) -> dict[str, Any]:
        """``reward_image``, ``reward``; with a known target, ``target_position`` and ``camera_axis_distance``."""
        info: dict[str, Any] = {"reward_image": reward / self.config.dt, "reward": reward}
        if self.geometry is not None and "target" in sensation:
            state, target = sensation["state"], sensation["target"]
            info["target_position"] = target.copy()
            info["camera_axis_distance"] = self.geometry.axis_distance(state[EE_POS], state[EE_QUAT], target)
        return info

    def stop_commands(self) -> dict[str, np.ndarray]:
        """Zero joint velocity for the arm."""
        return {"robot": np.zeros(NUM_JOINTS)}

    def __getstate__(self) -> dict[str, Any]:
        # The polling loop's process receives this task pickled (it starts with forkserver or
        # spawn). It runs sense() and actuate() only, never the factories that built the
        # communicators, and those are often lambdas, which do not pickle: leave them behind.
        state = self.__dict__.copy()
        config = copy.copy(self.config)
        config.camera = config.target_communicator = None
        config.extra_sensors = {key: copy.copy(sensor) for key, sensor in config.extra_sensors.items()}
        for sensor in config.extra_sensors.values():
            sensor.make = None
        state["config"] = config
        return state
