"""Stream freshness: budgets from the config, and a stopped device caught by the next step.

The device is a real CounterSensor process, stopped with SIGSTOP (alive, silent: what a hung
driver looks like); the env checks its age every step.
"""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest

from rtrl_env import RTRLBaseEnv
from rtrl_env.errors import EnvError
from rtrl_env.freshness import FreshnessConfig
from tests.support.processes import own_segments, pid_alive, wait_until
from tests.support.toy_communicators import CounterSensor
from tests.support.toy_envs import ACTION_DIM, FlatToyTask, flat_toy_env

pytestmark = pytest.mark.timeout(60)

DT = 0.02
RATE_HZ = 200.0
ACTION = np.array([0.5, -0.25])


def test_default_budget_is_three_periods_plus_the_allowance_capped_per_stream():
    config = FreshnessConfig(max_budget_s={"robot": 0.1}, budget_s={"camera": 0.5})
    assert config.budget("target", 0.01) == pytest.approx(3 * 0.01 + 0.1)
    assert config.budget("robot", 0.001) == pytest.approx(0.1)  # 0.103 s capped
    assert config.budget("camera", 1 / 30) == 0.5  # stated outright
    assert config.budget("free", None) is None  # no stated period: not checked
    assert FreshnessConfig(allowance_s=0).budget("x", 0.02) == pytest.approx(0.06)


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "ignore"}, "FreshnessConfig.policy='ignore'; choose one of ['raise', 'warn']"),
    ({"periods": 0}, "FreshnessConfig.periods=0: expected a number of periods > 0"),
    ({"allowance_s": -0.1}, "FreshnessConfig.allowance_s=-0.1: expected seconds >= 0"),
    ({"budget_s": {"camera": 0}}, "FreshnessConfig.budget_s['camera']=0: expected seconds > 0"),
], ids=["policy", "periods", "allowance", "budget"])
def test_bad_freshness_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        FreshnessConfig(**kwargs)


def test_a_budget_for_a_stream_the_env_does_not_have_is_refused_before_anything_starts():
    segments = own_segments()
    with pytest.raises(ValueError, match=re.escape("FreshnessConfig names ['camera'], which are not sensor streams "
                                                   "of the env; its streams: ['toy']")):
        RTRLBaseEnv(FlatToyTask(), {"toy": CounterSensor()}, dt=DT,
                    freshness=FreshnessConfig(budget_s={"camera": 0.2}))
    assert own_segments() == segments


def _stop_and_step_until_error(env, pid):
    """SIGSTOPs ``pid`` and steps until EnvError; returns (seconds from the stop, the error)."""
    stopped = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    deadline = stopped + 10
    while time.monotonic() < deadline:
        try:
            env.step(ACTION)
        except EnvError as err:
            return time.monotonic() - stopped, err
    pytest.fail("no step raised within 10 s of stopping the device")


@pytest.mark.parametrize("run_mode", ["singlethread", "multiprocess"])
def test_a_stopped_device_is_caught_within_its_budget_plus_one_cycle_and_stopped(run_mode):
    env = flat_toy_env(run_mode=run_mode, dt=DT, comm_kwargs={"rate_hz": RATE_HZ})
    toy = env.devices["toy"]
    try:
        env.reset()
        for _ in range(5):
            env.step(ACTION)
        budget = 3 / RATE_HZ + 0.1
        took, err = _stop_and_step_until_error(env, toy.pid)
        message = str(err)
        assert re.search(r"sensor stream 'toy' \(toy \(CounterSensor\)\) is \d+ ms old, over its budget of "
                         r"115 ms, expected period 5\.0 ms \(200 Hz\)", message), message
        assert "every actuator was sent its stop command and the episode ended" in message
        # The check runs once per step; a step may start late on a loaded machine (0.15 s slack).
        assert took <= budget + DT + 0.15, f"caught {took:.3f} s after the stop; budget {budget:.3f} s"
        assert np.all(toy.actuator_buffer.latest()[0] == 0), "the stop command is not the device's newest command"
        with pytest.raises(EnvError, match=re.escape("call reset() first")):
            env.step(ACTION)
        os.kill(toy.pid, signal.SIGCONT)  # the device comes back: the env goes on after a reset
        env.reset()
        assert wait_until(lambda: np.allclose(env.step(ACTION)[0][-ACTION_DIM:], ACTION), 5.0)
    finally:
        if pid_alive(toy.pid or 0):
            os.kill(toy.pid, signal.SIGCONT)
        env.close()


def test_with_policy_warn_stale_steps_are_counted_in_info_and_the_report():
    env = flat_toy_env(run_mode="multiprocess", dt=DT, comm_kwargs={"rate_hz": RATE_HZ},
                       freshness=FreshnessConfig(policy="warn"))
    toy = env.devices["toy"]
    try:
        env.reset()
        fresh = [env.step(ACTION)[4]["timing"] for _ in range(5)]
        assert all(t["stale"] == {} and t["stale_streams"] == 0 for t in fresh)
        os.kill(toy.pid, signal.SIGSTOP)
        stale = []
        deadline = time.monotonic() + 5
        while len(stale) < 3 and time.monotonic() < deadline:
            stale += [t for t in [env.step(ACTION)[4]["timing"]] if t["stale"]]
        os.kill(toy.pid, signal.SIGCONT)
        assert len(stale) == 3, "the stopped device was never reported stale"
        assert all(set(t["stale"]) == {"toy"} and t["stale"]["toy"] > 0.115 and t["stale_streams"] == 1
                   for t in stale), stale
        report = env.timing_report()
        assert report.stale_steps >= 3 and report.stale_by_stream["toy"] == report.stale_steps
    finally:
        if pid_alive(toy.pid or 0):
            os.kill(toy.pid, signal.SIGCONT)
        env.close()


def test_an_age_is_never_negative_while_the_device_writes_flat_out():
    # The clock is read after the stamps: a slot written between the two reads would otherwise
    # be younger than "now" (seen in a replay buffer as age/camera = -6e-7 s).
    from rtrl_env.freshness import FreshnessMonitor

    toy = CounterSensor(rate_hz=5000.0)
    toy.start()
    try:
        monitor = FreshnessMonitor(None, {"toy": toy})
        assert wait_until(lambda: toy.sensor_buffer.num_writes > 10, 10.0)
        ages = np.array([monitor.ages()["toy"] for _ in range(20000)])
        assert toy.sensor_buffer.num_writes > 100, "the device did not write meanwhile"
        assert np.all(ages >= 0), ages[ages < 0]
    finally:
        toy.close()
