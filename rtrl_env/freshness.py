"""Freshness of the sensor streams: how old each may get before a step acts on it.

Every step, after the cycle's deadline, the env measures the age of each sensor stream it reads:
now minus the capture time of the stream's newest slot. A device process that hangs (stopped,
deadlocked, starved) keeps its buffer full of old slots and raises nothing; its age grows. Each
stream has a budget, by default ``periods`` of its own expected period (``Communicator
.expected_period_s``) plus ``allowance_s``, capped per stream name (the reacher caps the arm's
state at 100 ms). A stream over its budget triggers the policy: ``raise`` (the default) stops the
actuators and raises EnvError naming the stream, its age and its expected period; ``warn`` counts
it in ``info["timing"]`` and the timing report. The check runs once per step, so a hung stream is
caught within its budget plus one cycle.

Example:
    >>> config = FreshnessConfig(max_budget_s={"robot": 0.1})
    >>> round(config.budget("robot", 0.002), 3), round(config.budget("camera", 1 / 30), 3)
    (0.1, 0.2)
"""
from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from communicators.communicator import Communicator
from rtrl_env.errors import EnvError


class StalePolicy(str, enum.Enum):
    """What a step does with a stream older than its budget."""

    RAISE = "raise"
    WARN = "warn"

    @classmethod
    def _missing_(cls, value: object) -> "StalePolicy":
        raise ValueError(f"FreshnessConfig.policy={value!r}; choose one of {[p.value for p in cls]}")


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class FreshnessConfig:
    """How old each sensor stream may get, and what a step does when one is older.

    Attributes:
        policy: ``"raise"`` (default): send the task's stop commands, end the episode and raise
            EnvError naming the stream, its age and its expected period. ``"warn"``: go on, and
            count the stream in ``info["timing"]["stale"]`` and the timing report.
        periods: a stream's default budget, in its own expected periods.
        allowance_s: seconds added to every default budget: the delivery latency (a frame is
            stamped before it is rendered) and scheduling delay a stream sees on a loaded machine
            without a real-time kernel. 3 periods alone tripped under load: on the 2-core
            development machine with 4 processes burning its cores, the sim camera's newest frame
            (30 fps, 3 periods = 100 ms) reached 125 ms and the sim arm's state 74 ms (500 Hz,
            3 periods = 6 ms).
        max_budget_s: stream name -> the most its default budget may be, s.
        budget_s: stream name -> its budget, s, replacing the default.
    """

    policy: StalePolicy | str = StalePolicy.RAISE
    periods: float = 3.0
    allowance_s: float = 0.1
    max_budget_s: Mapping[str, float] = field(default_factory=dict)
    budget_s: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", StalePolicy(self.policy))
        if not _positive(self.periods):
            raise ValueError(f"FreshnessConfig.periods={self.periods!r}: expected a number of periods > 0")
        if not (_positive(self.allowance_s) or self.allowance_s == 0):
            raise ValueError(f"FreshnessConfig.allowance_s={self.allowance_s!r}: expected seconds >= 0")
        for name in ("max_budget_s", "budget_s"):
            values = dict(getattr(self, name))
            for stream, seconds in values.items():
                if not _positive(seconds):
                    raise ValueError(f"FreshnessConfig.{name}[{stream!r}]={seconds!r}: expected seconds > 0")
            object.__setattr__(self, name, values)

    def budget(self, stream: str, period_s: float | None) -> float | None:
        """The budget of ``stream`` (s), given its expected period (s); None: it is not checked."""
        if stream in self.budget_s:
            return float(self.budget_s[stream])
        if period_s is None:
            return None
        return min(self.periods * period_s + self.allowance_s, self.max_budget_s.get(stream, math.inf))


class StaleStream(NamedTuple):
    """A stream found older than its budget at a step."""

    name: str
    label: str
    age_s: float
    budget_s: float
    period_s: float | None

    def describe(self) -> str:
        """One sentence naming the stream, its age, its budget and its expected period."""
        period = ("" if self.period_s is None else
                  f", expected period {self.period_s * 1e3:.1f} ms ({1.0 / self.period_s:.4g} Hz)")
        return (f"sensor stream {self.name!r} ({self.label}) is {self.age_s * 1e3:.0f} ms old, over its budget "
                f"of {self.budget_s * 1e3:.0f} ms{period}")


class FreshnessMonitor:
    """Checks the age of every sensor stream an env reads. Runs in the agent's process.

    Args:
        config: budgets and policy; None: ``FreshnessConfig()``.
        communicators: stream name -> its communicator (started before :meth:`check`).

    Raises:
        ValueError: ``config`` names a stream the env does not read; the message lists them.
        TypeError: ``config`` is not a FreshnessConfig.
    """

    def __init__(self, config: FreshnessConfig | None, communicators: Mapping[str, Communicator]) -> None:
        config = FreshnessConfig() if config is None else config
        if not isinstance(config, FreshnessConfig):
            raise TypeError(f"freshness must be a rtrl_env.freshness.FreshnessConfig, got {type(config).__name__}")
        self.config = config
        unknown = sorted((set(config.budget_s) | set(config.max_budget_s)) - set(communicators))
        if unknown:
            raise ValueError(f"FreshnessConfig names {unknown}, which are not sensor streams of the env; "
                             f"its streams: {sorted(communicators)}")
        self._streams = {}
        for name, comm in communicators.items():
            period = comm.expected_period_s
            budget = config.budget(name, period)
            if budget is not None:
                self._streams[name] = (comm, period, budget)

    @property
    def budgets(self) -> dict[str, float]:
        """Stream name -> budget, s, for every stream that is checked."""
        return {name: budget for name, (_, _, budget) in self._streams.items()}

    @property
    def names(self) -> list[str]:
        """The checked streams' names."""
        return list(self._streams)

    def ages(self, now: float | None = None, names: Iterable[str] | None = None) -> dict[str, float]:
        """Stream name -> age of its newest slot, s; NaN before its first slot.

        Args:
            now: when to measure (monotonic s). None (the default) reads the clock after the
                streams' stamps: a slot written between a clock read and the stamp's read would
                otherwise get a negative age.
            names: the streams to measure (default all checked streams).
        """
        names = self._streams if names is None else [n for n in names if n in self._streams]
        stamps = {}
        for name in names:
            buffer = self._streams[name][0].sensor_buffer
            stamps[name] = buffer.latest()[1] if buffer.num_writes else math.nan
        now = time.monotonic() if now is None else now
        return {name: now - stamp for name, stamp in stamps.items()}

    def stale(self, ages: Mapping[str, float]) -> list[StaleStream]:
        """The streams of ``ages`` older than their budget (a stream never written is not stale:
        the env waits for every stream's first slot before the first step)."""
        found = []
        for name, age in ages.items():
            comm, period, budget = self._streams[name]
            if age > budget:
                found.append(StaleStream(name, comm.name, age, budget, period))
        return found

    def check(self, now: float | None = None, names: Iterable[str] | None = None) -> list[StaleStream]:
        """The checked streams (all, or those of ``names``) older than their budget at ``now``
        (monotonic s; None: see ``ages``)."""
        return self.stale(self.ages(now, names))

    def wait_until_fresh(self, check_alive: Callable[[], None]) -> list[StaleStream]:
        """Waits up to the longest budget for every stream to be fresh (a stall that just ended
        passes, as before a reset); returns the streams still stale then.

        Args:
            check_alive: raises if a process of the env died (called while waiting).
        """
        deadline = time.monotonic() + max(self.budgets.values(), default=0.0)
        while stale := self.check():
            if time.monotonic() > deadline:
                return stale
            check_alive()
            time.sleep(0.002)
        return []

    @staticmethod
    def error(stale: list[StaleStream], label: str, stop_error: str | None) -> EnvError:
        """The EnvError for ``stale`` streams of env ``label``, after its stop commands were sent.

        Args:
            stop_error: why the stop commands failed, or None if they were sent.
        """
        stopped = ("every actuator was sent its stop command" if stop_error is None else
                   f"the stop commands failed ({stop_error}; raised again at close)")
        return EnvError(f"{label}: " + "; ".join(s.describe() for s in stale)
                        + f": is its device process hung or starved? {stopped} and the episode ended; "
                        "call reset() to try again, or close(). Budgets are set by the env's FreshnessConfig")
