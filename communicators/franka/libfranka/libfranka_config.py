"""Configuration of the libfranka backend (FR3, libfranka >= 0.10 through pylibfranka).

Example:
    >>> config = LibfrankaConfig(robot_ip="172.16.0.2")
    >>> round(float(config.safety.joint_pos_low[5]), 4)   # FR3 joint 6 starts at 0.5445 rad
    0.6445
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from communicators.franka.safety import (
    JOINT_MARGIN,
    PANDA_JOINT_POS_MAX,
    PANDA_JOINT_POS_MIN,
    SafetyLimits,
)
from communicators.franka.libfranka.velocity_shaper import VelocityShaperConfig

FR3_JOINT_POS_MIN = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
"""FR3 lower joint limits (rad), Franka's robot specifications."""
FR3_JOINT_POS_MAX = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])
"""FR3 upper joint limits (rad), Franka's robot specifications."""


def fr3_safety_limits(margin: float = JOINT_MARGIN) -> SafetyLimits:
    """Default `SafetyLimits` for an FR3: its joint ranges (inside the Panda's, which the shared
    filter also checks against) shrunk by `margin` rad, and the shared default workspace box."""
    return SafetyLimits(
        joint_pos_low=np.maximum(FR3_JOINT_POS_MIN, PANDA_JOINT_POS_MIN) + margin,
        joint_pos_high=np.minimum(FR3_JOINT_POS_MAX, PANDA_JOINT_POS_MAX) - margin,
    )


@dataclass
class LibfrankaConfig:
    """How the libfranka communicator connects to the robot and shapes its commands.

    Attributes:
        robot_ip: IP address (or host name) of the FR3's control box, as set in Desk
            (often 172.16.0.2); a loopback address for franka-sim.
        shaper: velocity, acceleration and jerk limits of the 1 kHz stream, and the watchdog
            timeout (s) after which a stale command ramps to zero velocity.
        safety: workspace box, joint limits and velocity limits the shared `SafetyFilter` enforces
            on every 1 kHz cycle.
        require_realtime_kernel: True makes libfranka enforce a PREEMPT_RT kernel (its default on
            a real set-up); False ignores it, with one warning when the kernel is not real-time.
        realtime_priority: SCHED_FIFO priority (1-99) for the 1 kHz loop's thread, or None to
            leave the scheduler alone. Needs root or CAP_SYS_NICE. Helps on a loaded machine
            without a real-time kernel (fewer lost cycles); with require_realtime_kernel libfranka
            raises the priority itself.
        recovery_timeout: s; how long to keep retrying automatic error recovery after a reflex
            (for example while the user stop is pressed) before the communicator fails.
        stop_timeout: s; at shutdown the arm ramps to zero velocity for at most this long before
            the motion is finished.
        state_buffer_len: slots in the 1 kHz state ring buffer.
        state_timeout: s without a new robot state (outside an automatic recovery) after which the
            communicator's `raise_if_failed` fails, so the env stops; a real FR3 stops itself
            sooner, after 20 ms without commands. franka-sim goes silent for about 0.6 s before it
            reports a reflex, which this counts as a lost robot.
    """

    robot_ip: str
    shaper: VelocityShaperConfig = field(default_factory=VelocityShaperConfig)
    safety: SafetyLimits = field(default_factory=fr3_safety_limits)
    require_realtime_kernel: bool = False
    realtime_priority: int | None = None
    recovery_timeout: float = 10.0
    stop_timeout: float = 1.0
    state_buffer_len: int = 64
    state_timeout: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.robot_ip, str) or not self.robot_ip.strip():
            raise ValueError(
                f"LibfrankaConfig.robot_ip={self.robot_ip!r} must be the robot's IP address, "
                "for example '172.16.0.2' (see Desk's network settings)"
            )
        if not isinstance(self.shaper, VelocityShaperConfig):
            raise ValueError(f"LibfrankaConfig.shaper must be a VelocityShaperConfig, got {type(self.shaper).__name__}")
        if not isinstance(self.safety, SafetyLimits):
            raise ValueError(f"LibfrankaConfig.safety must be a SafetyLimits, got {type(self.safety).__name__}")
        if self.realtime_priority is not None and not (
            isinstance(self.realtime_priority, int) and 1 <= self.realtime_priority <= 99
        ):
            raise ValueError(
                f"LibfrankaConfig.realtime_priority={self.realtime_priority!r} must be None or an "
                "int SCHED_FIFO priority in 1..99 (libfranka uses 80)"
            )
        for name in ("recovery_timeout", "stop_timeout", "state_timeout"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"LibfrankaConfig.{name}={value} s must be positive")
        if not (isinstance(self.state_buffer_len, int) and self.state_buffer_len >= 1):
            raise ValueError(f"LibfrankaConfig.state_buffer_len={self.state_buffer_len} must be an int >= 1")
