"""Turns the env's 25 Hz joint-velocity commands into a 1 kHz stream the FR3 accepts.

The env writes a new joint-velocity command every action cycle (40 ms). Sent to the robot as is,
each new command is a velocity step: in one 1 ms control cycle the commanded acceleration jumps
to (step / 1 ms), far past the FR3's limits, and the robot aborts the motion with the reflex
``joint_motion_generator_acceleration_discontinuity``. `VelocityShaper` moves the commanded
velocity toward the latest command one control cycle at a time along a jerk-limited profile: the
velocity stays within `max_velocity`, its first difference (acceleration) within
`max_acceleration`, and the second difference (jerk) within `max_jerk`, by construction.

Per joint and per cycle of length dt, with e = target - v:

    a_brake  = sqrt((J dt / 2)^2 + 2 J |e|) - J dt / 2        (J = max_jerk)
    a_wanted = sign(e) * min(max_acceleration, a_brake, |e| / dt)
    a <- a + clip(a_wanted - a, -max_jerk * dt, +max_jerk * dt)
    v <- v + a * dt

a_brake is the largest acceleration that jerk J, applied in steps of J dt, can still bring back to
zero by the time the remaining velocity error e is used up (a^2 / 2J + a dt / 2 = |e|), so v
arrives at the target without overshoot (to within one jerk step, max_jerk * dt^2); |e| / dt lands exactly on
it in the last cycle.

Watchdog: the project's one stale-command rule (communicators/watchdog.py): a command older than
`command_timeout` seconds by its timestamp (the env or the learner stalled or died) is replaced by
zero velocity, and the arm ramps down along the same profile instead of stepping to zero, which
would itself trigger a reflex.

Limits (FR3, https://frankarobotics.github.io/docs/robot_specifications.html, the same values as
libfranka >= 0.10's rate_limiting.h): joint velocity 2.62 rad/s (joints 1-4), 5.26, 4.18,
5.26 rad/s (joints 5-7); joint acceleration 10 rad/s^2 and jerk 5000 rad/s^3 for every joint.
The defaults stay well inside: half the velocity, 30 % of the acceleration and 20 % of the jerk.
The margin is for timing, not for the arm: when a state packet reaches us before the robot has
applied our previous command, the robot judges our step against a reference one or two cycles
newer than the `dq_d`/`ddq_d` we limited against, and charges up to (1 + cycles) * max_jerk as jerk
(seen on franka-sim under load: 7500 rad/s^3 with a 2500 rad/s^3 setting). 1000 rad/s^3 keeps that
under the robot's 5000 for up to four cycles.

Example:
    >>> import numpy as np
    >>> shaper = VelocityShaper(VelocityShaperConfig())
    >>> shaper.set_command(np.full(7, 0.5), timestamp=0.0)
    >>> first = shaper.step(shaper.target(now=0.001))
    >>> bool(np.all(first <= 3.0 * 0.001 + 1e-12))   # one cycle at most max_acceleration * dt
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from communicators.franka.state import NUM_JOINTS
from communicators.watchdog import CommandWatchdog

FR3_MAX_JOINT_VELOCITY = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
"""FR3 joint velocity limits (rad/s), Franka's robot specifications."""

FR3_MAX_JOINT_ACCELERATION = np.full(NUM_JOINTS, 10.0)
"""FR3 joint acceleration limits (rad/s^2), libfranka >= 0.10 kMaxJointAcceleration."""

FR3_MAX_JOINT_JERK = np.full(NUM_JOINTS, 5000.0)
"""FR3 joint jerk limits (rad/s^3), libfranka >= 0.10 kMaxJointJerk."""


def _limit_field(values: np.ndarray):
    return field(default_factory=lambda: np.array(values, dtype=np.float64))


@dataclass
class VelocityShaperConfig:
    """Limits of the shaped velocity stream and the watchdog timeout.

    Attributes:
        max_velocity: per-joint speed limit, shape (7,), rad/s; <= the FR3's.
        max_acceleration: per-joint acceleration limit, shape (7,), rad/s^2; <= the FR3's.
        max_jerk: per-joint jerk limit, shape (7,), rad/s^3; <= the FR3's.
        command_timeout: s; a command older than this is replaced by zero velocity (watchdog).
        dt: nominal control cycle, s (libfranka's 1 kHz loop).
    """

    max_velocity: np.ndarray = _limit_field(FR3_MAX_JOINT_VELOCITY * 0.5)
    max_acceleration: np.ndarray = _limit_field(FR3_MAX_JOINT_ACCELERATION * 0.3)
    max_jerk: np.ndarray = _limit_field(FR3_MAX_JOINT_JERK * 0.2)
    command_timeout: float = 0.1
    dt: float = 0.001

    def __post_init__(self) -> None:
        for name, robot_limit in (
            ("max_velocity", FR3_MAX_JOINT_VELOCITY),
            ("max_acceleration", FR3_MAX_JOINT_ACCELERATION),
            ("max_jerk", FR3_MAX_JOINT_JERK),
        ):
            value = np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (NUM_JOINTS,))
            if not np.all(np.isfinite(value)) or np.any(value <= 0) or np.any(value > robot_limit):
                raise ValueError(
                    f"VelocityShaperConfig.{name}={value.tolist()} must be positive and at most "
                    f"the FR3's limits {robot_limit.tolist()}"
                )
            setattr(self, name, value.copy())
        if not (np.isfinite(self.command_timeout) and self.command_timeout > 0):
            raise ValueError(
                f"VelocityShaperConfig.command_timeout={self.command_timeout} s must be positive"
            )
        if not 0 < self.dt <= 0.01:
            raise ValueError(f"VelocityShaperConfig.dt={self.dt} s must be in (0, 0.01]")


class VelocityShaper:
    """Jerk-limited tracking of the latest joint-velocity command, with a stale-command watchdog.

    Not thread-safe; one control loop owns it.

    Args:
        config: limits and timeout.
    """

    def __init__(self, config: VelocityShaperConfig | None = None) -> None:
        self.config = config if config is not None else VelocityShaperConfig()
        self._command = np.zeros(NUM_JOINTS)
        self._watchdog = CommandWatchdog(self.config.command_timeout)  # no command yet: stale
        self.velocity = np.zeros(NUM_JOINTS)
        """Last shaped velocity, shape (7,), rad/s."""
        self.acceleration = np.zeros(NUM_JOINTS)
        """Acceleration of the last shaped cycle, shape (7,), rad/s^2."""

    def reset(self, velocity: np.ndarray | None = None) -> None:
        """Restart the profile from `velocity` (rad/s, shape (7,); zero if None) at rest.

        Call when a motion (re)starts: the robot expects the first command to continue from the
        velocity it last reported as commanded (`dq_d`), with no acceleration.
        """
        self.velocity = np.zeros(NUM_JOINTS) if velocity is None else self._check(velocity, "velocity")
        self.acceleration = np.zeros(NUM_JOINTS)

    def sync(self, velocity: np.ndarray, acceleration: np.ndarray) -> None:
        """Continue the profile from what the robot last applied, not from our own last output.

        The robot differences the commands it *applies*. When a command arrives late it
        extrapolates the last one at constant acceleration, so our own record falls behind its
        reference and the next step, judged against the extrapolated value, looks like a jump.
        libfranka's rate limiter therefore limits against the robot's reported `dq_d` and
        `ddq_d`; so do we, each cycle.

        Args:
            velocity: the robot's last commanded joint velocity (`dq_d`), shape (7,), rad/s.
            acceleration: its last commanded acceleration (`ddq_d`), shape (7,), rad/s^2.
        """
        self.velocity = self._check(velocity, "velocity")
        self.acceleration = self._check(acceleration, "acceleration")

    def set_command(self, dq: np.ndarray, timestamp: float) -> None:
        """Store the newest command.

        Args:
            dq: commanded joint velocities, shape (7,), rad/s. A command holding NaN or inf is
                replaced by zero velocity.
            timestamp: time.monotonic() seconds when the command was issued.
        """
        dq = np.asarray(dq, dtype=np.float64)
        if dq.shape != (NUM_JOINTS,):
            raise ValueError(f"joint-velocity command has shape {dq.shape}, expected (7,)")
        # A broken command (NaN, inf) is no command: stop rather than guess.
        self._command = dq.copy() if np.all(np.isfinite(dq)) else np.zeros(NUM_JOINTS)
        self._watchdog.command_arrived(timestamp)

    def is_stale(self, now: float) -> bool:
        """True when no command arrived within `command_timeout` before `now` (monotonic s)."""
        return self._watchdog.is_stale(now)

    def target(self, now: float) -> np.ndarray:
        """The velocity to track at `now`: the latest command, or zero when it is stale (rad/s)."""
        if self.is_stale(now):
            return np.zeros(NUM_JOINTS)
        return np.clip(self._command, -self.config.max_velocity, self.config.max_velocity)

    def step(self, target: np.ndarray, dt: float | None = None) -> np.ndarray:
        """Advance one control cycle toward `target` and return the velocity to send.

        Args:
            target: velocity to track, shape (7,), rad/s (clipped to max_velocity).
            dt: length of this cycle in s (a late cycle is longer); config.dt if None.

        Returns:
            Shaped joint velocities, shape (7,), rad/s (a copy).
        """
        cfg = self.config
        dt = cfg.dt if dt is None else float(dt)
        target = np.clip(self._check(target, "target"), -cfg.max_velocity, cfg.max_velocity)
        error = target - self.velocity
        # Largest acceleration the jerk limit can still bring to zero, in steps of max_jerk * dt,
        # before the remaining error is used up: a^2 / (2 J) + a dt / 2 = |e|.
        half_step = 0.5 * cfg.max_jerk * dt
        brake = np.sqrt(half_step**2 + 2.0 * cfg.max_jerk * np.abs(error)) - half_step
        wanted = np.sign(error) * np.minimum(np.minimum(cfg.max_acceleration, brake), np.abs(error) / dt)
        max_change = cfg.max_jerk * dt
        self.acceleration = self.acceleration + np.clip(wanted - self.acceleration, -max_change, max_change)
        self.velocity = self.velocity + self.acceleration * dt
        return self.velocity.copy()

    @staticmethod
    def _check(value: np.ndarray, name: str) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (NUM_JOINTS,) or not np.all(np.isfinite(value)):
            raise ValueError(f"VelocityShaper {name} must be 7 finite numbers in rad/s, got {value!r}")
        return value.copy()
