"""Settings of the Franka visual reacher (one dataclass, checked on construction).

Keyword arguments of `gymnasium.make("FrankaVisualReacher-v0", ...)` are fields of this class; an
unknown name raises TypeError listing the valid ones.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from communicators.errors import ConfigError
from communicators.realtime import PacingMode
from rtrl_env.base_env import RUN_MODES
from rtrl_env.freshness import FreshnessConfig
from rtrl_env.reacher.homing import HomingConfig
from rtrl_env.reacher.image_reward import ImageRewardConfig
from rtrl_env.reacher.devices import (SIM_BACKENDS, CommunicatorFactory, ExtraSensor, check_backend,
                                     robot_backends)
from rtrl_env.reacher.joints import (ALL_JOINTS, DEFAULT_MAX_JOINT_VELOCITY, HOME_POSE,
                                   ActionScaler, check_joints)

RESERVED_KEYS = ("image", "proprioception")
ARM_STATE_MAX_AGE_S = 0.1
"""A real arm's state may be at most this old (s) at a step: the commands computed from it move the arm."""
SIM_ALLOWANCE_S = 1.0
"""Seconds added to each stream's 3 periods with the sim backend. A simulated device that its process
stalls is frozen with it (the sim arm skips the lost time, nothing moves), so its staleness endangers
nothing, while a loaded machine stalls processes often: on the shared 2-core development machine a
process sleeping 2 ms at a time saw gaps of up to 680 ms, and the sim arm's state reached 255 ms at
a step, under other users' load (SCHED_FIFO removed the gaps). A hung simulated device is still
caught within about a second."""


def default_freshness(backend: str) -> FreshnessConfig:
    """The reacher's stream budgets for ``backend``.

    Real arms: the defaults (3 periods + 0.1 s), the arm's state capped at 100 ms. The sim: 3
    periods + 1 s for every stream (see SIM_ALLOWANCE_S).
    """
    if backend in SIM_BACKENDS:
        return FreshnessConfig(allowance_s=SIM_ALLOWANCE_S)
    return FreshnessConfig(max_budget_s={"robot": ARM_STATE_MAX_AGE_S})


@dataclass
class FrankaVisualReacherConfig:
    """Everything the reacher can be configured with.

    Attributes:
        joints: joints the action moves (0..6 = A1..A7); the others hold still.
        env_id: name used in error messages (set by the registered id).
        backend: robot backend, "sim" (default), "ros", "ros2" or "libfranka"
            (see rtrl_env/reacher/devices.py).
        robot_config: the backend's own config (e.g. FrankaSimConfig); None for its defaults.
        dt: action cycle, s.
        episode_length_s: episode duration, s; a whole number of cycles.
        image_width: camera image width, pixels.
        image_height: camera image height, pixels.
        camera_fps: camera frame rate, Hz.
        frame_stack: number of camera frames stacked in the image observation (k).
        max_joint_velocity: joint speed at action +-1, rad/s.
        home_pose: reset goal before jitter, 7 joint angles, rad.
        home_jitter: uniform noise added to the moving joints' home angles, +- rad.
        reward: red colour range, scale and clip of the image reward.
        homing: gains, tolerance and stall timeout of the reset move.
        freshness: how old each stream ("robot", "camera", "target", extra sensors) may get at a
            step, and what happens then (rtrl_env/freshness.py): EnvError after the arm is stopped,
            or with `FreshnessConfig(policy="warn")` a count. None (default): the backend's
            `default_freshness`: real arms 3 periods + 0.1 s per stream, the arm's state at most
            100 ms; the sim 3 periods + 1 s.
        target: the target communicator's config (TargetConfig for the sim, TargetDisplayConfig
            for real set-ups); None for its defaults.
        camera: factory of a camera communicator replacing the default; see
            reacher_communicators.py.
        target_communicator: factory of a target communicator replacing the default.
        extra_sensors: more sensors, observation key -> ExtraSensor.
        blank_image: the observation's ``image`` is all zeros. The camera still runs and the
            reward still comes from its frames (and ``render`` shows them), but the agent's pixels
            tell it nothing, not where the target is: a variant for proving that another sensor
            is learned from (examples/benchmark_sensor_learning.py). Default False.
        new_target_timeout_s: after requesting a new target at reset, wait at most this long (s)
            for the target and then a camera frame that shows it.
        run_mode: the base env's run mode: "multiprocess", "multithread" or "singlethread".
        pacing: the base env's pacing, "deadline" (the default, no drift) or "relative" (the seed's
            and SenseAct's, for comparison).
        realtime_priority: SCHED_FIFO priority (1..99) of the stepping thread and the polling
            loop, so a learner at full load cannot delay the cycle; None keeps the normal
            scheduler. Needs root or CAP_SYS_NICE (otherwise a warning, and the normal scheduler).
    """

    joints: tuple[int, ...] = ALL_JOINTS
    env_id: str = "FrankaVisualReacher-v0"
    backend: str = "sim"
    robot_config: Any = None
    dt: float = 0.04
    episode_length_s: float = 4.0
    image_width: int = 160
    image_height: int = 120
    camera_fps: float = 30.0
    frame_stack: int = 3
    max_joint_velocity: float = DEFAULT_MAX_JOINT_VELOCITY
    home_pose: tuple[float, ...] = tuple(HOME_POSE)
    home_jitter: float = 0.1
    reward: ImageRewardConfig = field(default_factory=ImageRewardConfig)
    homing: HomingConfig = field(default_factory=HomingConfig)
    freshness: FreshnessConfig | None = None
    target: Any = None
    camera: CommunicatorFactory | None = None
    target_communicator: CommunicatorFactory | None = None
    extra_sensors: dict[str, ExtraSensor] = field(default_factory=dict)
    blank_image: bool = False
    new_target_timeout_s: float = 2.0
    run_mode: str = "multiprocess"
    pacing: str = "deadline"
    realtime_priority: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, requirement: str, example: Any = None) -> ConfigError:
            return ConfigError("FrankaVisualReacherConfig", name, getattr(self, name), requirement, example)

        try:
            self.joints = check_joints(self.joints)
            ActionScaler(self.joints, self.max_joint_velocity)  # validates the speed
        except ValueError as err:
            raise bad("joints" if "joints" in str(err) else "max_joint_velocity", str(err)) from None
        try:
            check_backend(self.backend)
        except ValueError:
            raise bad("backend", f"must be one of {', '.join(robot_backends())} (or a name registered with "
                                 "rtrl_env.reacher.devices.register_robot_backend)") from None
        for name, unit, example in (("dt", "seconds", 0.04), ("episode_length_s", "seconds", 4.0),
                                    ("camera_fps", "Hz", 30.0), ("new_target_timeout_s", "seconds", 2.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise bad(name, f"must be a positive number of {unit}", example)
        steps = self.episode_length_s / self.dt
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise bad("episode_length_s", f"must be a whole number of cycles of dt={self.dt} s",
                      float(f"{max(1, round(steps)) * self.dt:.6g}"))
        for name in ("image_width", "image_height", "frame_stack"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise bad(name, "must be a whole number >= 1")
        home = np.asarray(self.home_pose, dtype=np.float64)
        if home.shape != (7,) or not np.all(np.isfinite(home)):
            raise bad("home_pose", "must be 7 joint angles in rad")
        self.home_pose = tuple(float(v) for v in home)
        if not (np.isfinite(self.home_jitter) and 0 <= self.home_jitter <= 0.5):
            raise bad("home_jitter", "must be a number of rad in [0, 0.5]", 0.1)
        if not isinstance(self.reward, ImageRewardConfig):
            raise TypeError(f"FrankaVisualReacherConfig.reward must be an ImageRewardConfig, "
                            f"got {type(self.reward).__name__}")
        if not isinstance(self.homing, HomingConfig):
            raise TypeError(f"FrankaVisualReacherConfig.homing must be a HomingConfig, "
                            f"got {type(self.homing).__name__}")
        if self.freshness is None:
            self.freshness = default_freshness(self.backend)
        if not isinstance(self.freshness, FreshnessConfig):
            raise TypeError(f"FrankaVisualReacherConfig.freshness must be a rtrl_env.freshness.FreshnessConfig, "
                            f"got {type(self.freshness).__name__}")
        for key, sensor in self.extra_sensors.items():
            if key in RESERVED_KEYS or key in ("robot", "target", "camera"):
                raise ValueError(f"extra sensor name {key!r} is taken; choose another than "
                                 f"{RESERVED_KEYS + ('robot', 'target', 'camera')}")
            if not isinstance(sensor, ExtraSensor):
                raise TypeError(f"extra_sensors[{key!r}] must be an ExtraSensor, "
                                f"got {type(sensor).__name__}")
        if not isinstance(self.blank_image, (bool, np.bool_)):
            raise bad("blank_image", "must be True or False")
        self.blank_image = bool(self.blank_image)
        if self.run_mode not in RUN_MODES:
            raise bad("run_mode", f"must be one of {RUN_MODES}")
        try:
            self.pacing = PacingMode(self.pacing).value
        except ValueError:
            raise bad("pacing", f"must be one of {[m.value for m in PacingMode]}") from None
        if self.realtime_priority is not None and not (
                isinstance(self.realtime_priority, (int, np.integer)) and 1 <= self.realtime_priority <= 99):
            raise bad("realtime_priority", "must be None or a whole number in 1..99", 50)

    @property
    def episode_steps(self) -> int:
        """Cycles per episode."""
        return round(self.episode_length_s / self.dt)

    @classmethod
    def from_kwargs(cls, config: "FrankaVisualReacherConfig | None" = None,
                    **overrides: Any) -> "FrankaVisualReacherConfig":
        """`config` (or the defaults) with `overrides` applied, validated again.

        Raises:
            TypeError: an override names no field; the message lists the fields.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"unknown FrankaVisualReacher argument(s) {unknown}; valid: "
                            f"{', '.join(names)}")
        base = config if config is not None else cls()
        if ("backend" in overrides and "freshness" not in overrides
                and base.freshness == default_freshness(base.backend)):
            overrides["freshness"] = None  # the new backend's default, not the old one's
        return dataclasses.replace(base, **overrides)
