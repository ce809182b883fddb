"""The polling loop's process: actions and sensor writes wake it (they do not wait out its idle
sleep), and with nothing to forward it sleeps instead of polling."""
from __future__ import annotations

import time

import numpy as np
import pytest

from communicators import futex
from rtrl_env.polling_loop import ACTION_WAIT_S
from tests.support.processes import wait_for
from tests.support.toy_envs import flat_toy_env

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env_of():
    made = []

    def make(**kwargs):
        made.append(flat_toy_env(run_mode="multiprocess", start_method="forkserver", **kwargs))
        made[-1].reset(seed=0)
        return made[-1]

    yield make
    for env in made:
        env.close()


def test_an_action_reaches_the_device_without_waiting_out_the_loops_idle_sleep(env_of):
    env = env_of(sleep_time=1.0)  # the sensor side sleeps a whole second when no sensor has news
    commands = env._comms["toy"].actuator_buffer
    for value in (0.5, -0.25, 0.75):
        before, sent = commands.num_writes, time.monotonic()
        env.act(np.array([value, value], np.float32))
        wait_for(lambda: commands.num_writes > before, 5.0, "the action at the device")
        delay = time.monotonic() - sent
        assert delay < 0.5, f"the action took {delay:.2f} s: it waited for the loop's 1 s sleep"
        assert commands.latest()[0][0] == pytest.approx(value)


def test_a_loop_with_no_action_to_forward_sleeps_instead_of_polling(env_of):
    env = env_of(sleep_time=0.0001)
    loop = env._loop
    time.sleep(0.3)  # past start-up and the reset's last action
    before, start = loop.overruns()["actuator_cycles"], time.monotonic()
    time.sleep(2.0)
    cycles = loop.overruns()["actuator_cycles"] - before
    elapsed = time.monotonic() - start
    # One wake-up per ACTION_WAIT_S at most (plus the counters' publishing slack); polling every
    # sleep_time would be thousands.
    assert cycles <= elapsed / ACTION_WAIT_S + 10, f"{cycles} actuator cycles in {elapsed:.1f} s with no action"



@pytest.mark.skipif(not futex.available(), reason="sensor writes wake the loop only with futex_waitv (Linux 5.16+)")
def test_sensor_writes_wake_the_loop_so_sensations_follow_the_sensor_not_the_idle_sleep(env_of):
    env = env_of(sleep_time=1.0)  # polling would give one sensation a second
    sensations, states = env._loop.sensor_buffer, env._comms["toy"].sensor_buffer
    s0, d0 = sensations.num_writes, states.num_writes
    wait_for(lambda: states.num_writes - d0 >= 100, 10.0, "100 sensor writes")  # 0.5 s at 200 Hz
    made, written = sensations.num_writes - s0, states.num_writes - d0
    assert made >= 0.5 * written, f"{made} sensations from {written} sensor writes"
    # The newest sensation is at most a few sensor periods behind the newest write.
    newest_state = states.latest()[2]
    assert env.latest_sensation()[0][0] >= newest_state - 10
