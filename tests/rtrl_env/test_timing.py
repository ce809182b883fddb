"""CycleTelemetry and TimingReport: per-step records and the summary computed from them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtrl_env.timing import CycleTelemetry, TimingReport

pytestmark = pytest.mark.timeout(10)

DT = 0.04


def record_steps(telemetry: CycleTelemetry, t0: float, periods: list[float], ages: list[float],
                 overruns: list[bool]) -> list[dict]:
    """Records steps whose starts follow from ``periods`` (the first step's period is NaN)."""
    infos, start = [], t0
    for period, age, overrun in zip(periods, ages, overruns):
        start += DT if math.isnan(period) else period
        infos.append(telemetry.record(start, period, start - DT + 0.001, start - age, overrun))
    return infos


def test_record_returns_this_steps_timing():
    telemetry = CycleTelemetry(DT)
    telemetry.restart(100.0)
    info = telemetry.record(100.041, 0.041, 100.001, 100.030, True)
    assert info["start"] == 100.041 and info["period"] == 0.041 and info["action_write"] == 100.001
    assert info["obs_timestamp"] == 100.030 and info["obs_age"] == pytest.approx(0.011)
    assert info["overrun"] is True and info["drift"] == pytest.approx(0.001)


def test_report_summarises_periods_errors_overruns_drift_and_ages():
    telemetry = CycleTelemetry(DT)
    telemetry.restart(0.0)
    periods = [math.nan, 0.040, 0.041, 0.039, 0.050, 0.040]
    ages = [0.002, 0.003, 0.004, 0.005, 0.020, 0.001]
    overruns = [False, False, False, False, True, False]
    record_steps(telemetry, 0.0, periods, ages, overruns)
    report = telemetry.report()
    finite = np.array(periods[1:])
    err = np.abs(finite - DT) * 1e3
    assert report.steps == 5, "the first step after a reset has no period and is not a cycle"
    assert report.dt_ms == pytest.approx(40.0)
    assert report.period_p50_ms == pytest.approx(np.percentile(finite, 50) * 1e3)
    assert report.period_max_ms == pytest.approx(50.0)
    assert report.error_p50_ms == pytest.approx(np.percentile(err, 50))
    assert report.error_p90_ms == pytest.approx(np.percentile(err, 90))
    assert report.error_p99_ms == pytest.approx(np.percentile(err, 99))
    assert report.error_max_ms == pytest.approx(10.0)
    assert report.overruns == 1
    # The last step started at 0.04 + sum(periods) against its grid point 6 * dt.
    assert report.drift_ms == pytest.approx((DT + finite.sum() - 6 * DT) * 1e3)
    assert report.obs_age_max_ms == pytest.approx(20.0)
    assert report.obs_age_p50_ms == pytest.approx(np.percentile(ages, 50) * 1e3)
    assert set(report.as_dict()) == {f.name for f in TimingReport.__dataclass_fields__.values()}


def test_report_before_a_complete_cycle_raises():
    telemetry = CycleTelemetry(DT)
    with pytest.raises(ValueError, match="no complete action cycle recorded yet"):
        telemetry.report()
    telemetry.restart(0.0)
    record_steps(telemetry, 0.0, [math.nan], [0.001], [False])
    with pytest.raises(ValueError, match="call step\\(\\) at least twice"):
        telemetry.report()


def test_restart_keeps_records_and_measures_drift_from_the_new_grid():
    telemetry = CycleTelemetry(DT)
    telemetry.restart(0.0)
    record_steps(telemetry, 0.0, [math.nan, 0.04, 0.04], [0.001] * 3, [False] * 3)
    telemetry.restart(10.0)
    info = record_steps(telemetry, 10.0, [math.nan, 0.045], [0.001] * 2, [False] * 2)[-1]
    assert info["drift"] == pytest.approx(0.005)
    assert telemetry.steps == 5 and telemetry.report().steps == 3


def test_capacity_keeps_the_newest_steps():
    telemetry = CycleTelemetry(DT, capacity=3)
    telemetry.restart(0.0)
    record_steps(telemetry, 0.0, [math.nan, 0.041, 0.042, 0.043, 0.044], [0.001] * 5, [False] * 5)
    records = telemetry.records()
    assert telemetry.steps == 3 and set(records) == {"start", "period", "action_write", "obs_timestamp",
                                                     "obs_age", "overrun", "stale_streams"}
    assert sorted(np.round(records["period"], 3).tolist()) == [0.042, 0.043, 0.044]
    telemetry.clear()
    assert telemetry.steps == 0
