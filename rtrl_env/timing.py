"""Per-step timing telemetry of the action cycle, and its summary report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

_FIELDS = ("start", "period", "action_write", "obs_timestamp", "obs_age", "overrun", "stale_streams")


@dataclass(frozen=True)
class TimingReport:
    """Summary of the action cycle since the last reset of the telemetry.

    All times are in milliseconds except ``steps``, ``overruns`` and the stale counts.
    """

    steps: int
    dt_ms: float
    period_p50_ms: float
    period_p99_ms: float
    period_max_ms: float
    error_p50_ms: float  # |period - dt|
    error_p90_ms: float
    error_p99_ms: float
    error_max_ms: float
    overruns: int
    drift_ms: float  # lateness of the last step against the grid t0 + k*dt
    obs_age_p50_ms: float
    obs_age_p99_ms: float
    obs_age_max_ms: float
    stale_steps: int = 0  # steps at which a sensor stream was older than its budget (policy "warn")
    stale_by_stream: dict[str, int] = field(default_factory=dict)  # stream name -> such steps

    def as_dict(self) -> dict:
        return asdict(self)


class CycleTelemetry:
    """Records the timing of every step in preallocated arrays (no allocation per step).

    Args:
        dt: the action cycle in seconds.
        capacity: steps kept; older ones are overwritten.
    """

    def __init__(self, dt: float, capacity: int = 1_000_000) -> None:
        self.dt = dt
        self._data = np.zeros((capacity, len(_FIELDS)))
        self._count = 0
        self.t0 = 0.0
        self._grid_steps = 0
        self._drift = 0.0
        self._stale_by_stream: dict[str, int] = {}

    def restart(self, t0: float) -> None:
        """Starts a new grid at ``t0`` (monotonic seconds); kept records stay for the report."""
        self.t0 = t0
        self._grid_steps = 0

    def record(self, start: float, period: float, action_write: float, obs_timestamp: float, overrun: bool,
               grid_index: int | None = None, stale: Sequence[str] = ()) -> dict:
        """Stores one step and returns it as the ``info['timing']`` dict (seconds).

        ``grid_index`` is the pacer's count of grid points passed (skipped ones included), so drift
        is measured against the grid the pacer follows; None counts one point per step. ``stale``
        names the sensor streams found older than their budget at this step.
        """
        self._grid_steps = self._grid_steps + 1 if grid_index is None else grid_index
        for name in stale:
            self._stale_by_stream[name] = self._stale_by_stream.get(name, 0) + 1
        row = (start, period, action_write, obs_timestamp, start - obs_timestamp, float(overrun), float(len(stale)))
        self._data[self._count % len(self._data)] = row
        self._count += 1
        self._drift = start - (self.t0 + self._grid_steps * self.dt)
        return dict(zip(_FIELDS, row), overrun=bool(overrun), stale_streams=len(stale), drift=self._drift)

    def clear(self) -> None:
        self._count = 0
        self._stale_by_stream = {}

    @property
    def steps(self) -> int:
        return min(self._count, len(self._data))

    def records(self) -> dict[str, np.ndarray]:
        """Every kept step, one array per field (seconds)."""
        rows = self._data[: self.steps]
        if self._count > len(self._data):  # wrapped: oldest first
            rows = np.roll(rows, -(self._count % len(self._data)), axis=0)
        return {name: rows[:, i].copy() for i, name in enumerate(_FIELDS)}

    def report(self) -> TimingReport:
        """Percentiles of the kept steps. Steps whose period spans a reset are excluded."""
        rec = self.records()
        period = rec["period"][np.isfinite(rec["period"])]
        if period.size == 0:
            raise ValueError("no complete action cycle recorded yet: call step() at least twice")
        err = np.abs(period - self.dt)
        age = rec["obs_age"]
        ms = 1000.0
        return TimingReport(
            steps=int(period.size), dt_ms=self.dt * ms,
            period_p50_ms=float(np.percentile(period, 50) * ms), period_p99_ms=float(np.percentile(period, 99) * ms),
            period_max_ms=float(period.max() * ms),
            error_p50_ms=float(np.percentile(err, 50) * ms), error_p90_ms=float(np.percentile(err, 90) * ms),
            error_p99_ms=float(np.percentile(err, 99) * ms), error_max_ms=float(err.max() * ms),
            overruns=int(rec["overrun"].sum()), drift_ms=float(self._drift * ms),
            obs_age_p50_ms=float(np.percentile(age, 50) * ms), obs_age_p99_ms=float(np.percentile(age, 99) * ms),
            obs_age_max_ms=float(age.max() * ms),
            stale_steps=int(np.count_nonzero(rec["stale_streams"])), stale_by_stream=dict(self._stale_by_stream),
        )
