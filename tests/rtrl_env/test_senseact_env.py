"""SenseAct's RTRLBaseEnv over the core: a SenseAct-style env ported by imports only, in every run mode.

The env and its device (tests/support/senseact_style.py) are written as SenseAct's are; each test
checks one behaviour of SenseAct 0.1.x's public API (senseact/rtrl_base_env.py), with real
processes, real shared memory and a real polling loop.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from communicators.senseact import Communicator
from rtrl_env.errors import EnvError
from rtrl_env.senseact import RTRLBaseEnv
from tests.support.processes import Script, child_pids, pid_alive, wait_for
from tests.support.senseact_style import ServoCommunicator, ServoReacherEnv

pytestmark = pytest.mark.timeout(90)
MODES = ["singlethread", "multithread", "multiprocess"]
DT = 0.02


@pytest.fixture
def envs():
    made = []

    def make(**kwargs) -> ServoReacherEnv:
        kwargs.setdefault("dt", DT)
        made.append(ServoReacherEnv(**kwargs))
        return made[-1]

    yield make
    for env in made:
        env.close()


@pytest.mark.parametrize("run_mode", MODES)
def test_step_returns_obs_reward_done_info_and_the_servo_follows_the_actions(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    env.reset()
    for _ in range(10):
        obs, reward, done, info = env.step(1.0)  # a scalar action for a one-element action space
    assert obs.shape == (env.obs_history + 1,) and isinstance(reward, float) and isinstance(done, bool)
    assert "timing" in info
    assert obs[-2] > 0.05, f"the servo did not move forward: positions {obs[:-1]}"
    assert reward == pytest.approx(-abs(obs[-1] - obs[-2]), abs=0.02)


@pytest.mark.parametrize("run_mode", MODES)
def test_reset_runs_where_the_sensation_is_computed_and_returns_an_observation_after_it(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    for expected in (1, 2):
        obs = env.reset()
        assert env.reset_count.value == expected
        # _reset_ set a plain attribute (target); the observation carries it, so _compute_sensation_
        # ran where _reset_ did (the polling loop), and after it.
        assert obs[-1] == pytest.approx(env._target_.value) and 0.2 <= obs[-1] <= 0.5
        assert env.episode_steps == 0


@pytest.mark.parametrize("run_mode", ["multithread", "multiprocess"])
def test_a_non_blocking_reset_returns_at_once_and_the_loop_resets_meanwhile(envs, run_mode):
    env = envs(run_mode=run_mode, reset_time=0.5)
    env.start()
    started = time.monotonic()
    env.reset(blocking=False)
    assert time.monotonic() - started < 0.4, "reset(blocking=False) waited for _reset_"
    assert env.reset_count.value == 0
    wait_for(lambda: env.reset_count.value == 1, timeout=10, what="the polling loop's reset")


def test_singlethread_resets_block_whatever_blocking_says_as_in_senseact(envs):
    env = envs(run_mode="singlethread", reset_time=0.3)
    env.start()
    started = time.monotonic()
    env.reset(blocking=False)
    assert env.reset_count.value == 1 and time.monotonic() - started >= 0.3


@pytest.mark.parametrize("run_mode", MODES)
def test_step_works_right_after_start_without_a_reset(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    obs, _, _, _ = env.step(0)
    assert obs.shape == (env.obs_history + 1,) and env.reset_count.value == 0


@pytest.mark.parametrize("run_mode", ["singlethread", "multiprocess"])
def test_act_sense_and_sense_wait_split_a_step_and_keep_the_cycle_on_its_grid(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    env.reset()
    for _ in range(25):
        env.act(0.5)
        obs, reward, done = env.sense_wait()
    assert obs[-2] > 0.02
    now_obs, _, _ = env.sense()
    assert now_obs.shape == obs.shape
    # On the grid t0 + k*dt: each wake-up's offset from the grid, whichever point it was; the median,
    # since one wake-up can be late on a loaded machine.
    starts = env.timing_records()["start"][-20:]
    offsets = (starts - starts[0] + DT / 2) % DT - DT / 2
    assert len(starts) == 20 and np.median(np.abs(offsets)) < 0.002, offsets


def test_check_done_ends_the_episode_by_step_count_and_stepping_on_is_allowed(envs):
    env = envs(run_mode="multiprocess", episode_length_step=5)
    env.start()
    env.reset()
    dones = [env.step(0.0)[2] for _ in range(7)]
    assert dones[:4] == [False] * 4 and dones[4:] == [True] * 3


def test_a_window_longer_than_the_sensor_buffer_wraps_as_senseacts_does(envs):
    env = envs(run_mode="singlethread", obs_history=5, buffer_len=3)
    env.start()
    obs = env.reset()
    assert set(env.window_lengths) == {5}, "_compute_sensation_ did not get num_sensor_packets slots"
    assert obs[0] == obs[3] and obs[1] == obs[4], f"a 5-slot window of a 3-slot ring repeats slots: {obs[:5]}"


@pytest.mark.parametrize("action, match", [
    (np.zeros(3), "action has 3 elements .* expected action_dim=1"),
    (np.nan, r"action\[0\]=nan is not finite"),
])
def test_a_malformed_or_non_finite_action_is_refused_before_it_reaches_a_device(envs, action, match):
    env = envs(run_mode="singlethread")
    env.start()
    writes = env._actuator_comms["servo"].actuator_buffer.num_writes
    with pytest.raises(ValueError, match=match):
        env.step(action)
    assert env._actuator_comms["servo"].actuator_buffer.num_writes == writes


@pytest.mark.parametrize("run_mode", MODES)
def test_a_crash_in_compute_sensation_closes_everything_and_says_why(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    env.step(0)
    pids = [c.pid for c in env._all_comms.values()]
    env.crash_flag.value = 1
    with pytest.raises((EnvError, Exception), match="compute sensation failure on demand"):
        for _ in range(100):  # the loop's next sensation raises; the next call sees it
            env.step(0)
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="every communicator to stop")


@pytest.mark.parametrize("run_mode", ["singlethread", "multiprocess"])
def test_a_crashed_communicator_raises_env_error_with_its_traceback(envs, run_mode):
    env = envs(run_mode=run_mode)
    env.start()
    env.step(0)
    env._all_comms["servo"].crash_flag.value = 1
    with pytest.raises(EnvError, match="(?s)'servo.*servo sensor failure on demand"):
        for _ in range(200):
            env.step(0)
    with pytest.raises(EnvError, match="servo sensor failure on demand"):
        env.step(0)  # a dead env stays dead, and says why


@pytest.mark.parametrize("run_mode", MODES)
def test_close_stops_every_process_and_the_device_runs_its_close_hook(envs, run_mode):
    before = child_pids()
    env = envs(run_mode=run_mode)
    env.start()
    servo = env._all_comms["servo"]
    assert len(child_pids() - before) == (2 if run_mode == "multiprocess" else 1)
    env.close()
    assert child_pids() == before and servo.closed.value == 1
    env.close()  # idempotent


def test_killing_the_agent_process_ends_the_communicators_and_the_polling_loop():
    code = (
        "import os, time\n"
        "from tests.support.senseact_style import ServoReacherEnv\n"
        "env = ServoReacherEnv(run_mode='multiprocess', dt=0.02)\n"
        "env.start()\n"
        "print(' '.join(str(p.pid) for p in env.processes), flush=True)\n"
        "while True:\n"
        "    env.step(0)\n"
    )
    with Script(code) as script:
        pids = [int(p) for p in script.read_line(timeout_s=60).split()]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        script.kill()
        wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=10,
                 what="the communicator and the polling loop to exit after the agent died")


def test_bad_arguments_are_refused_by_name_and_nothing_is_left_running():
    before = child_pids()
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) \['lock'\]"):
        ServoReacherEnv(run_mode="singlethread", lock=True)
    with pytest.raises(ValueError, match=r"communicator_setups\['x'\] = 3: expected"):
        RTRLBaseEnv({"x": 3}, 1, 1)
    with pytest.raises(ValueError, match="run_mode='threads'"):
        ServoReacherEnv(run_mode="threads")
    with pytest.raises(EnvError, match="call start\\(\\) first"):
        ServoReacherEnv(run_mode="singlethread").step(0)
    assert child_pids() == before


class _WrongLength(ServoReacherEnv):
    def _compute_sensation_(self, name, sensor_window, timestamp_window, index_window):
        return [1.0, 2.0]


def test_a_sensation_of_the_wrong_length_names_the_hook_and_the_layout_and_closes_the_env():
    before = child_pids()
    env = _WrongLength(run_mode="singlethread", dt=DT)
    with pytest.raises(ValueError, match=r"_compute_sensation_ returned 2 values; expected observation_dim \+ 2 = 5"):
        env.start()
    assert child_pids() == before, "a failed start left processes running"
    with pytest.raises(EnvError, match="_compute_sensation_ returned 2 values"):
        env.step(0)


class _SensorOnly(Communicator):
    """SenseAct's basic pattern: a device with a sensor and no actuator."""

    def __init__(self):
        super().__init__({"array_len": 1, "array_type": "d", "np_array_type": "d"}, None, use_actuator=False)

    def _sensor_handler(self):
        self.sensor_buffer.write(time.monotonic())
        time.sleep(0.005)


class _Watcher(RTRLBaseEnv):
    def __init__(self, **kwargs):
        super().__init__({"clock": {"Communicator": _SensorOnly, "kwargs": {}}}, 1, 1, **kwargs)

    def _reset_(self):
        pass

    def _compute_sensation_(self, name, sensor_window, timestamp_window, index_window):
        return [sensor_window[-1][0], 0.0, 0.0]

    def _compute_actuation_(self, action, timestamp, index):
        pass


def test_an_env_without_actuators_and_a_spawned_polling_loop_works_too():
    env = _Watcher(run_mode="multiprocess", dt=DT, start_method="spawn")
    try:
        env.start()
        first = env.reset()
        later, _, _, _ = env.step(0)
        assert later[0] > first[0]
    finally:
        env.close()
