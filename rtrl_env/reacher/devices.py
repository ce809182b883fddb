"""Which communicators the visual reacher runs: robot backends by name, camera, target, extra sensors.

The robot backend is chosen by name (`backend="sim"` by default). Each name maps to a factory
that builds the arm's communicator from that backend's own config object (None: its defaults):

    =========  ===============================================================  ===============
    backend    communicator                                                     robot_config
    =========  ===============================================================  ===============
    sim        communicators.sim.franka_sim_communicator.FrankaSimCommunicator  FrankaSimConfig
    ros        communicators.franka.ros.franka_ros_communicator.FrankaROSCommunicator  FrankaROSConfig
    ros2       communicators.franka.ros2.franka_ros2_communicator                      FrankaROS2Config
               .FrankaROS2Communicator
    libfranka  communicators.franka.libfranka.franka_libfranka_communicator            LibfrankaConfig
               .FrankaLibfrankaCommunicator                                     (robot_ip needed)
    =========  ===============================================================  ===============

All of them publish the arm state in the layout of `communicators/franka/state.py` and take 7 joint
velocities (rad/s), so the env does not care which one runs. Modules are imported only when their
backend is chosen: the ROS, ROS 2 and libfranka stacks need packages the sim does not.

Camera and target: `CommunicatorFactory` callables, `factory(built) -> Communicator`, where `built`
maps the names of communicators built so far ("robot", then "target", then "camera", then the
extra sensors in order) to their instances, so a simulated camera can read the simulated arm's and
target's buffers. The defaults follow the backend: the sim renders the wrist camera and moves a
simulated target; real backends open an OpenCV camera and draw the target on a monitor.

Extra sensors (`ExtraSensor`) add a key to the observation without editing library code; see
examples/new_sensor_example.py.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

from communicators.communicator import Communicator

CommunicatorFactory = Callable[[dict[str, Communicator]], Communicator]
RobotFactory = Callable[[Any], Communicator]

# name -> (module, communicator class); imported lazily. Each communicator checks its own config.
_BUILTIN_ROBOTS: dict[str, tuple[str, str]] = {
    "sim": ("communicators.sim.franka_sim_communicator", "FrankaSimCommunicator"),
    "ros": ("communicators.franka.ros.franka_ros_communicator", "FrankaROSCommunicator"),
    "ros2": ("communicators.franka.ros2.franka_ros2_communicator", "FrankaROS2Communicator"),
    "libfranka": ("communicators.franka.libfranka.franka_libfranka_communicator",
                  "FrankaLibfrankaCommunicator"),
}
_CUSTOM_ROBOTS: dict[str, RobotFactory] = {}

SIM_BACKENDS = frozenset({"sim"})
"""Backends whose target position is ground truth (the env then reports the camera-axis error)."""


def robot_backends() -> list[str]:
    """Names `backend=` accepts, built-in first."""
    return list(_BUILTIN_ROBOTS) + sorted(set(_CUSTOM_ROBOTS) - set(_BUILTIN_ROBOTS))


def check_backend(name: str) -> str:
    """Return `name` if it is a known backend, else raise ValueError listing the valid ones."""
    if name not in _BUILTIN_ROBOTS and name not in _CUSTOM_ROBOTS:
        options = ", ".join(repr(b) for b in robot_backends())
        raise ValueError(f"unknown robot backend {name!r}; expected one of {options} "
                         "(or register one with rtrl_env.reacher.devices."
                         "register_robot_backend)")
    return name


def register_robot_backend(name: str, factory: RobotFactory) -> None:
    """Add (or replace) a robot backend: `factory(config_or_None) -> Communicator`.

    The communicator must publish the state layout of communicators/franka/state.py and accept
    7 joint velocities (rad/s) in its actuator buffer, with its own safety filter and watchdog.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"backend name {name!r}: expected a non-empty string")
    _CUSTOM_ROBOTS[name] = factory


def make_robot(backend: str, config: Any = None) -> Communicator:
    """Build the arm's communicator for `backend` (not started).

    Args:
        backend: a name from `robot_backends()`.
        config: the backend's config object (see the table above); None for its defaults.

    Raises:
        ValueError: unknown backend.
        ImportError: the backend's module is missing; the message names it and the backend.
    """
    check_backend(backend)
    if backend in _CUSTOM_ROBOTS:
        return _CUSTOM_ROBOTS[backend](config)
    module_name, cls_name = _BUILTIN_ROBOTS[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"robot backend {backend!r} needs {module_name}, which cannot be "
                          f"imported ({exc}); install that backend's extras or use "
                          "backend='sim'") from exc
    return getattr(module, cls_name)(config)


def default_target(backend: str, target_config: Any) -> CommunicatorFactory:
    """The target's factory: a simulated target for the sim, a monitor dot for real arms.

    Args:
        backend: the robot backend name.
        target_config: TargetConfig (sim) or TargetDisplayConfig (real); None for defaults.
    """
    if backend in SIM_BACKENDS:
        from communicators.sim.sim_target_communicator import SimTargetCommunicator
        return lambda built: SimTargetCommunicator(target_config)
    from communicators.target.target_display_communicator import TargetDisplayCommunicator
    return lambda built: TargetDisplayCommunicator(target_config)


def default_camera(backend: str, width: int, height: int, fps: float) -> CommunicatorFactory:
    """The camera's factory: the sim's wrist camera, or OpenCV device 0 for real arms.

    Args:
        backend: the robot backend name.
        width: image width, pixels.
        height: image height, pixels.
        fps: frames per second.
    """
    if backend in SIM_BACKENDS:
        from communicators.sim.sim_camera_communicator import (SimCameraCommunicator,
                                                               SimCameraConfig)
        config = SimCameraConfig(width=width, height=height, fps=fps)
        return lambda built: SimCameraCommunicator(
            config, built["robot"].sensor_buffer, built["target"].sensor_buffer)
    from communicators.camera.opencv_camera_communicator import (OpenCVCameraCommunicator,
                                                                 OpenCVCameraConfig)
    config = OpenCVCameraConfig(width=width, height=height, fps=fps)
    return lambda built: OpenCVCameraCommunicator(config)


def latest_slot(data: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Default observation of an extra sensor: its newest slot (data is (window, *shape))."""
    return data[-1]


@dataclass
class ExtraSensor:
    """A sensor communicator added to the reacher, with its data under its own observation key.

    Attributes:
        make: factory `make(built) -> Communicator`; `built` holds "robot", "target", "camera"
            and earlier extra sensors, so a sensor may read their buffers.
        space: the observation space of this key (gymnasium Box); the env checks every value.
        observe: maps the sensor window (data (window_len, *shape), timestamps (window_len,)) to
            the observation value; default: the newest slot.
        window_len: how many of the newest slots `observe` receives, >= 1.
        name: its observation key when it is added with ``--sensor`` (default: the factory's name);
            with ``extra_sensors=`` the dict's key is used.

    `observe` runs in the env's polling loop, a process of its own in multiprocess run mode
    (started with forkserver or spawn), so it must be a module-level function (or another
    picklable callable), not a lambda.
    """

    make: CommunicatorFactory
    space: spaces.Space
    observe: Callable[[np.ndarray, np.ndarray], np.ndarray] = field(default=latest_slot)
    window_len: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.make) or not callable(self.observe):
            raise TypeError("ExtraSensor.make and .observe must be callables")
        if not isinstance(self.space, spaces.Space):
            raise TypeError(f"ExtraSensor.space must be a gymnasium space, got {self.space!r}")
        if not isinstance(self.window_len, int) or self.window_len < 1:
            raise ValueError(f"ExtraSensor.window_len={self.window_len!r}: expected an int >= 1")
