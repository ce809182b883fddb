"""Where the visual target is: pure motion logic shared by the sim target and the target display.

No processes and no devices: `TargetMotion.position(t)` is a pure function of the time since
the episode started, so the simulated target and the red dot on a real monitor move the same way
and can be tested without either. `TargetEpisodes` puts it on the monotonic clock and restarts
it when the env requests a new episode; both target communicators use it.

Modes (the visual reacher's three tasks):
    reaching: a uniformly random position in the box each episode, static within the episode.
    tracking: a random start position and direction each episode, moving at `speed` and
        bouncing off the box edges.
    static:   one fixed position (`static_position`, or the box centre), every episode.

Units follow the box: metres in the world frame for the simulated target, normalised screen
coordinates (0..1) for the target display.
"""
from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

# Default box: a patch of the monitor lying under the Franka (communicators/sim/physics/scene.py: screen
# x 0.3..0.7, y -0.3..0.3) that the wrist camera sees from the arm's home pose, kept one target
# radius inside the screen edges. World frame = robot base frame, metres; z is the scene's
# TARGET_REST_Z: the screen surface, level with the robot base, on which the target lies.
# tests/communicators/sim/test_sim_target_communicator.py checks the match with the scene.
DEFAULT_LOW = (0.35, -0.25, 0.0)
DEFAULT_HIGH = (0.65, 0.25, 0.0)


class TargetMode(str, enum.Enum):
    """How the target moves; see the module docstring."""

    REACHING = "reaching"
    TRACKING = "tracking"
    STATIC = "static"

    @classmethod
    def _missing_(cls, value: object) -> "TargetMode":
        # Accept any case ("Reaching"); otherwise list the options instead of Enum's bare message.
        if isinstance(value, str):
            for mode in cls:
                if mode.value == value.lower():
                    return mode
        options = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"unknown target mode {value!r}; expected one of {options}")


def _as_vec3(name: str, value: object) -> tuple[float, float, float]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"TargetConfig.{name}={value!r}: expected 3 finite numbers (x, y, z)")
    return tuple(float(v) for v in arr)


@dataclass
class TargetConfig:
    """Target motion and publishing rate, checked on construction.

    Attributes:
        mode: reaching, tracking or static (a `TargetMode` or its name).
        low: lower corner (x, y, z) of the box the target stays in (world frame, m; or
            normalised screen coordinates for the target display). An axis with low == high
            is held fixed (the default box is flat: z is the surface height).
        high: upper corner (x, y, z) of the box, >= low on every axis.
        speed: tracking speed in box units per second (m/s in the world frame); must be > 0
            in tracking mode.
        rate_hz: how often the communicator publishes the position, in Hz.
        static_position: position in static mode; None means the box centre. Must lie in the box.
        seed: seed of the episode positions; with a seed, episode n always gets the same
            target. None draws fresh randomness every episode.
    """

    mode: TargetMode | str = TargetMode.REACHING
    low: tuple[float, float, float] = DEFAULT_LOW
    high: tuple[float, float, float] = DEFAULT_HIGH
    speed: float = 0.1
    rate_hz: float = 100.0
    static_position: tuple[float, float, float] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        self.mode = TargetMode(self.mode)
        self.low = _as_vec3("low", self.low)
        self.high = _as_vec3("high", self.high)
        bad = [axis for axis, lo, hi in zip("xyz", self.low, self.high) if hi < lo]
        if bad:
            raise ValueError(
                f"TargetConfig: high {self.high} is below low {self.low} on axis {', '.join(bad)}; "
                "swap the corners"
            )
        if not (np.isfinite(self.speed) and self.speed >= 0):
            raise ValueError(f"TargetConfig.speed={self.speed!r}: expected a finite number >= 0")
        if self.mode is TargetMode.TRACKING and self.speed == 0:
            raise ValueError("TargetConfig.speed=0 in tracking mode: the target would not move; "
                             "use mode='static' or set speed > 0")
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"TargetConfig.rate_hz={self.rate_hz!r}: expected a number > 0 (Hz)")
        if self.static_position is not None:
            self.static_position = _as_vec3("static_position", self.static_position)
            if not np.all((self.low <= np.array(self.static_position))
                          & (np.array(self.static_position) <= self.high)):
                raise ValueError(
                    f"TargetConfig.static_position={self.static_position} is outside the box "
                    f"low={self.low}, high={self.high}"
                )
        if self.seed is not None and (not isinstance(self.seed, (int, np.integer)) or self.seed < 0):
            raise ValueError(f"TargetConfig.seed={self.seed!r}: expected a non-negative int or None")

    def episode_rng(self, episode: int) -> np.random.Generator:
        """Random generator for one episode: reproducible per (seed, episode) when seeded.

        Args:
            episode: episode number, a non-negative int.
        """
        if episode < 0:
            raise ValueError(f"episode number {episode} is negative; expected 0, 1, 2, ...")
        return np.random.default_rng(None if self.seed is None else [int(self.seed), int(episode)])


class TargetMotion:
    """Target position as a function of time since the episode started.

    Example:
        >>> motion = TargetMotion(TargetConfig(mode="reaching", seed=0))
        >>> motion.new_episode(np.random.default_rng(1))
        >>> bool(np.all(motion.position(0.0) == motion.position(3.0)))
        True
    """

    def __init__(self, config: TargetConfig) -> None:
        """Start at the static position (or the box centre) until `new_episode` is called.

        Args:
            config: box, mode and speed.
        """
        self.config = config
        self._low = np.array(self.config.low)
        self._high = np.array(self.config.high)
        self._start = (self._low + self._high) / 2.0
        if self.config.static_position is not None:
            self._start = np.array(self.config.static_position)
        self._velocity = np.zeros(3)

    def new_episode(self, rng: np.random.Generator) -> None:
        """Draw this episode's start position (and direction in tracking mode).

        Args:
            rng: random generator; static mode does not use it.
        """
        mode = self.config.mode
        if mode is TargetMode.STATIC:
            return
        self._start = rng.uniform(self._low, self._high)
        if mode is TargetMode.TRACKING:
            # Random direction within the axes that can move (a flat box moves in its plane).
            free = self._high > self._low
            direction = np.where(free, rng.normal(size=3), 0.0)
            norm = np.linalg.norm(direction)
            if norm == 0.0:  # a box that is a single point: nothing can move
                self._velocity = np.zeros(3)
            else:
                self._velocity = self.config.speed * direction / norm

    def set_episode(self, start: np.ndarray, velocity: np.ndarray) -> None:
        """Start an episode from a given position and velocity instead of drawing them.

        For replaying a recorded episode, or a test that needs a known path.

        Args:
            start: float (3,) start position inside the box.
            velocity: float (3,) units/s; only tracking mode moves.
        """
        self._start = np.array(start, dtype=np.float64).reshape(3)
        self._velocity = np.array(velocity, dtype=np.float64).reshape(3)

    def position(self, t: float) -> np.ndarray:
        """Target position at `t` seconds after the episode started.

        Args:
            t: seconds since `new_episode`, >= 0.

        Returns:
            float64 (3,) position inside the box [low, high].
        """
        if self.config.mode is not TargetMode.TRACKING:
            return self._start.copy()
        # Bouncing off the walls is a triangle wave of the unbounded path, so the position needs
        # no per-step state and is exact at any t (no accumulated error, no missed bounce).
        width = self._high - self._low
        travelled = self._start - self._low + self._velocity * float(t)
        safe_width = np.where(width > 0, width, 1.0)
        phase = np.mod(travelled, 2.0 * safe_width)
        folded = np.where(phase <= safe_width, phase, 2.0 * safe_width - phase)
        return np.where(width > 0, self._low + folded, self._low)


class TargetEpisodes:
    """`TargetMotion` on the monotonic clock, restarted when an episode is requested.

    Thread-safe: a communicator's actuator thread requests episodes while its sensor thread
    reads positions.

    Args:
        config: box, mode and speed.
        clock: seconds, monotonic; `time.monotonic` so timestamps match the shared buffers.
    """

    def __init__(self, config: TargetConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._motion = TargetMotion(config)
        self._lock = threading.Lock()
        self.episode = -1
        self.start_episode(0)

    def start_episode(self, episode: float) -> None:
        """Draw the target of `episode` and restart its clock.

        Args:
            episode: episode number, a non-negative whole number (a float64 buffer value is fine).

        Raises:
            ValueError: `episode` is negative, fractional or not finite.
        """
        if not np.isfinite(episode) or episode != int(episode):
            raise ValueError(f"target episode request {episode!r} is not a whole number; "
                             "write the episode number (0, 1, 2, ...) to the actuator buffer")
        rng = self.config.episode_rng(int(episode))
        with self._lock:
            self._motion.new_episode(rng)
            self._start_time = self._clock()
            self.episode = int(episode)

    def position(self) -> tuple[np.ndarray, float]:
        """Target position now.

        Returns:
            (float64 (3,) position, the clock time it is for).
        """
        with self._lock:
            now = self._clock()
            return self._motion.position(now - self._start_time), now
