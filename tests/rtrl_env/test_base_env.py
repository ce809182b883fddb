"""RTRLBaseEnv over toy tasks: the Gymnasium cycle in every run mode, Dict observations, timing, bad
input, crashes, cleanup."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import time

import numpy as np
import pytest

from communicators import CommunicatorError
from rtrl_env.errors import EnvError
from rtrl_env import RTRLBaseEnv
from tests.support.processes import Script, child_pids, own_segments, pid_alive, segments_of, wait_until
from tests.support.toy_communicators import FRAME_SHAPE, CounterSensor, CrashOnDemand
from tests.support.toy_envs import ACTION_DIM, FlatToyTask, dict_toy_env, env_pids, flat_toy_env

pytestmark = pytest.mark.timeout(60)

MODES = [
    pytest.param("singlethread", "fork", id="singlethread"),
    pytest.param("multithread", "fork", id="multithread"),
    pytest.param("multiprocess", "fork", id="multiprocess-fork"),
    pytest.param("multiprocess", "spawn", id="multiprocess-spawn"),
]
ACTION = np.array([0.5, -0.25])
ECHO = slice(1 + CounterSensor.HEADER, None)  # the command echo in FlatToyEnv's observation


@pytest.fixture
def envs():
    """Builds envs for a test and closes them afterwards, even when it fails."""
    made = []

    def make(factory=flat_toy_env, **kwargs):
        made.append(factory(**kwargs))
        return made[-1]

    yield make
    for env in made:
        env.close()


def all_gone(pids: list[int]) -> bool:
    return not any(pid_alive(p) for p in pids)


@pytest.mark.parametrize("run_mode, method", MODES)
def test_flat_env_steps_deliver_actions_and_fresh_observations(run_mode, method, envs):
    env = envs(run_mode=run_mode, start_method=method)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and env.task.resets == 1
    assert info["timing"]["obs_age"] >= 0
    assert obs[2] != os.getpid(), "the device was opened in the agent's process"
    indices, echoed = [obs[0]], False
    for _ in range(50):
        result = env.step(ACTION)
        assert len(result) == 5
        obs, reward, terminated, truncated, info = result
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and reward == obs[1]
        assert terminated is False and truncated is False
        assert {"period", "overrun", "obs_age", "obs_timestamp", "action_write"} <= set(info["timing"])
        indices.append(obs[0])
        if np.allclose(obs[ECHO], ACTION):
            echoed = True
            break
    assert echoed, f"the action never reached the communicator; echo {obs[ECHO]}"
    assert np.all(np.diff(indices) >= 0), f"the observation went back in time: {indices}"
    assert indices[-1] > indices[0], "the observation never got fresher"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dict_observation_keeps_uint8_images_in_multiprocess_mode(method, envs):
    env = envs(dict_toy_env, start_method=method)
    obs, _ = env.reset()
    frames = set()
    for _ in range(10):
        obs, reward, terminated, _, _ = env.step(ACTION)
        assert env.observation_space.contains(obs), {k: (v.dtype, v.shape) for k, v in obs.items()}
        assert obs["image"].dtype == np.uint8 and obs["image"].shape == FRAME_SHAPE
        assert np.unique(obs["image"]).size == 1
        frames.add(int(obs["image"][0, 0, 0]))
        assert reward == obs["state"][0] and terminated is False
    assert len(frames) > 1, "the image never changed between steps"
    assert wait_until(lambda: np.allclose(env.step(ACTION)[0]["state"][CounterSensor.HEADER:], ACTION), 5.0)


def test_timing_report_after_a_short_run(envs):
    dt, steps = 0.02, 30
    env = envs(run_mode="multiprocess", dt=dt)
    env.reset()
    periods = [env.step(ACTION)[4]["timing"]["period"] for _ in range(steps)]
    assert np.isnan(periods[0]), "the first step after reset spans the reset, not a cycle"
    report = env.timing_report()
    assert report.steps == steps - 1 and report.dt_ms == pytest.approx(dt * 1e3)
    # Loose: the machine is shared. Benchmarks, not tests, hold the timing targets.
    assert 0.5 * dt * 1e3 < report.period_p50_ms < 1.5 * dt * 1e3, report
    assert 0 <= report.error_p50_ms <= report.error_p90_ms <= report.error_p99_ms <= report.error_max_ms
    assert 0 <= report.overruns <= report.steps // 4, report
    assert 0 <= report.obs_age_p50_ms <= report.obs_age_max_ms < 1000.0
    assert np.isfinite(report.drift_ms)
    assert len(env.timing_records()["period"]) == steps


BAD_ACTIONS = [
    pytest.param(np.array([np.nan, 0.0]), "action[0]=nan is not finite", id="nan"),
    pytest.param(np.array([0.0, np.inf]), "action[1]=inf is not finite", id="inf"),
    pytest.param(np.array([0.1, 0.2, 0.3]), "action has shape (3,), expected (2,)", id="too-long"),
    pytest.param([[0.1, 0.2]], "action has shape (1, 2), expected (2,)", id="wrong-rank"),
    pytest.param(np.array([1.5, 0.0]), "action[0]=1.5 is outside [-1, 1], the action space", id="out-of-bounds"),
    pytest.param(["0.5", "0.5"], "action is a sequence holding '0.5' of type str", id="strings"),
    pytest.param(np.array(["0.5", "0.5"]), "action is of dtype <U3 (strings; convert them to numbers first)",
                 id="string-array"),
    pytest.param(np.array([b"1", b"0"]), "action is of dtype |S1 (bytes", id="bytes-array"),
    pytest.param(np.array([True, False]), "action is of dtype bool (booleans, which would become 0 and full speed)",
                 id="bool-array"),
    pytest.param([True, 0.5], "action is a sequence holding True of type bool", id="bool-in-list"),
    pytest.param(np.array([0.5 + 1j, 0.0]), "action is of dtype complex128 (complex numbers; pass the real part",
                 id="complex"),
    pytest.param(np.array([0.5, None], dtype=object), "action is of dtype object (Python objects", id="object"),
]
WHAT_TO_PASS = "expected a float or integer array of shape (2,) (e.g. np.zeros((2,), np.float32)) or a list of Python numbers"


@pytest.mark.parametrize("run_mode", ["singlethread", "multiprocess"])
def test_bad_actions_raise_and_send_nothing(run_mode, envs):
    env = envs(run_mode=run_mode)
    env.reset()
    env.step(ACTION)
    # Every actuator buffer of the env's processes: the device's, and the polling loop's action input.
    buffers = [p.actuator_buffer for p in env.processes]
    for param in BAD_ACTIONS:
        action, match = param.values
        before = [b.num_writes for b in buffers]
        with pytest.raises(ValueError, match=re.escape(match)) as caught:
            env.step(action)
        assert "nothing was sent" in str(caught.value)
        if "action is" in match:
            assert WHAT_TO_PASS in str(caught.value)
        assert [b.num_writes for b in buffers] == before, f"{param.id}: something was sent"
    obs = env.step(ACTION)[0]
    assert np.allclose(obs[ECHO], ACTION), "a rejected action reached the communicator"


def test_a_torch_tensor_that_requires_grad_is_refused_and_one_without_grad_is_taken(envs):
    torch = pytest.importorskip("torch")
    env = envs(run_mode="singlethread")
    env.reset()
    buffer = env.devices["toy"].actuator_buffer
    before = buffer.num_writes
    with pytest.raises(ValueError, match=re.escape("action is a torch tensor of dtype torch.float32 that requires "
                                                   "grad; pass action.detach().cpu().numpy()")):
        env.step(torch.tensor([0.5, -0.25], requires_grad=True))
    assert buffer.num_writes == before, "the refused tensor was sent"
    env.step(torch.tensor([0.5, -0.25]))
    assert np.allclose(buffer.latest()[0], ACTION)


@pytest.mark.parametrize("action", [[1, 0], np.array([1, 0], np.int64), np.array([1, 0], np.uint8),
                                    np.array([0.5, -0.25], np.float32), (0.5, -0.25), [np.float32(0.5), -0.25]],
                         ids=["int-list", "int64", "uint8", "float32", "tuple", "numpy-scalars"])
def test_integer_and_float_actions_and_lists_of_numbers_are_taken(action, envs):
    env = envs(run_mode="singlethread")
    env.reset()
    env.step(action)
    assert np.allclose(env.devices["toy"].actuator_buffer.latest()[0], np.asarray(action, np.float64))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dt": 0}, ValueError, "dt=0 must be a positive number of seconds"),
    ({"dt": -0.02}, ValueError, "dt=-0.02 must be a positive number of seconds"),
    ({"dt": float("nan")}, ValueError, "dt=nan must be a positive number of seconds"),
    ({"run_mode": "threads"}, ValueError,
     "run_mode='threads'; choose one of ('singlethread', 'multithread', 'multiprocess')"),
    ({"max_episode_steps": 0}, ValueError, "max_episode_steps=0 must be a positive integer or None"),
    ({"windows": {"camera": 1}}, ValueError, "windows names ['camera'], which are not communicators (['toy'])"),
], ids=["dt-zero", "dt-negative", "dt-nan", "unknown-run-mode", "zero-episode-steps", "unknown-window"])
def test_bad_constructor_arguments_fail_before_any_process_starts_and_free_the_devices(kwargs, error, match):
    children, segments = child_pids(), own_segments()
    with pytest.raises(error, match=re.escape(match)):
        RTRLBaseEnv(FlatToyTask(), {"toy": CounterSensor()}, **{"dt": 0.02, **kwargs})
    gc.collect()
    assert child_pids() == children, "a rejected env started processes"
    assert own_segments() == segments, "a rejected env left the communicators' segments"


def test_something_that_is_not_a_communicator_is_refused_by_its_name():
    with pytest.raises(TypeError, match=re.escape("communicator 'bad' is a dict, not a communicators.Communicator")):
        RTRLBaseEnv(FlatToyTask(), {"bad": {}}, dt=0.02)


def test_step_before_reset_raises(envs):
    env = envs()
    with pytest.raises(EnvError, match=re.escape("step() before reset()")):
        env.step(ACTION)
    assert not env_pids(env)


@pytest.mark.parametrize("run_mode, method", MODES)
def test_a_crashing_communicator_stops_the_env_with_its_traceback(run_mode, method, envs):
    segments = own_segments()
    env = envs(run_mode=run_mode, start_method=method, comm_class=CrashOnDemand)
    env.reset()
    env.step(ACTION)
    pids = env_pids(env)
    comm = env.devices["toy"]
    comm.crash()
    assert wait_until(lambda: not comm.is_alive(), 5.0), "the communicator did not end on its error"
    with pytest.raises(EnvError) as caught:
        env.step(ACTION)
    message = str(caught.value)
    assert isinstance(caught.value.__cause__, CommunicatorError)
    for text in ("'toy (CrashOnDemand)'", CrashOnDemand.MESSAGE, "in read_sensor", "Traceback"):
        assert text in message, f"{text!r} missing from:\n{message}"
    assert wait_until(lambda: all_gone(pids), 2.0), "children outlived the crash by 2 s"
    assert own_segments() == segments, "the crash left segments"
    with pytest.raises(EnvError):
        env.step(ACTION)


def test_a_killed_polling_loop_stops_the_env(envs):
    env = envs(run_mode="multiprocess")
    env.reset()
    env.step(ACTION)
    pids = env_pids(env)
    loop = env.processes[-1]
    assert "polling loop" in loop.name
    os.kill(loop.pid, signal.SIGKILL)
    assert wait_until(lambda: not loop.is_alive(), 5.0)
    with pytest.raises(EnvError, match=r"polling loop'? died(.|\n)*killed by signal 9"):
        env.step(ACTION)
    assert wait_until(lambda: all_gone(pids), 2.0), "children outlived the dead polling loop by 2 s"


MAIN_SCRIPT = """
import json, time
import numpy as np
from tests.support.toy_envs import env_pids, flat_toy_env
env = flat_toy_env(run_mode="multiprocess", start_method={method!r})
env.reset()
for _ in range(3):
    env.step(np.zeros(2))
print(json.dumps(env_pids(env)), flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_every_child_exits_when_the_main_process_is_killed(method):
    with Script(MAIN_SCRIPT.format(method=method)) as main:
        pids = json.loads(main.read_line())
        try:
            assert len(pids) == 2 and all(pid_alive(p) for p in pids)
            assert segments_of({main.pid})
            main.kill()
            assert wait_until(lambda: all_gone(pids), 2.0), "children outlived the main process by 2 s"
            assert wait_until(lambda: not segments_of({main.pid}), 5.0), segments_of({main.pid})
        finally:
            for pid in pids:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_context_manager_starts_and_closes_everything():
    segments = own_segments()
    with flat_toy_env(run_mode="multiprocess") as env:
        procs = env.processes
        pids = env_pids(env)
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        env.reset()
        env.step(ACTION)
    assert wait_until(lambda: all_gone(pids), 2.0)
    assert [p.exitcode for p in procs] == [0, 0]
    assert own_segments() == segments


def test_after_a_crash_every_call_repeats_the_cause_instead_of_an_unrelated_error():
    env = flat_toy_env(run_mode="singlethread", comm_class=CrashOnDemand)
    try:
        env.reset()
        env.devices["toy"].crash()
        deadline = time.monotonic() + 10
        with pytest.raises(EnvError):
            while time.monotonic() < deadline:
                env.step(np.zeros(env.action_space.shape))
        for call in (lambda: env.step(np.zeros(env.action_space.shape)), env.reset):
            with pytest.raises(EnvError, match=re.escape("'toy (CrashOnDemand)' died")):
                call()
    finally:
        env.close()


def test_a_window_longer_than_the_sensor_buffer_fails_before_any_process_starts():
    before = set(child_pids())
    with pytest.raises(ValueError, match="communicator 'toy': window 99 must be an int between 1 and its sensor buffer_len"):
        RTRLBaseEnv(FlatToyTask(), {"toy": CounterSensor()}, windows={"toy": 99}, run_mode="singlethread", dt=0.02)
    assert set(child_pids()) == before


def test_a_closed_env_says_so_instead_of_failing_obscurely():
    env = flat_toy_env(run_mode="singlethread")
    env.reset()
    env.close()
    env.close()  # idempotent
    for call in (lambda: env.step(np.zeros(env.action_space.shape)), env.reset):
        with pytest.raises(EnvError, match="is closed"):
            call()


def test_drift_stays_on_the_grid_after_an_overrun():
    env = flat_toy_env(run_mode="singlethread", dt=0.02)
    try:
        env.reset()
        env.step(np.zeros(env.action_space.shape))
        time.sleep(0.07)  # the agent stalls for three and a half cycles
        for _ in range(5):
            _, _, _, _, info = env.step(np.zeros(env.action_space.shape))
        report = env.timing_report()
        assert report.overruns == 1
        assert abs(info["timing"]["drift"]) < 0.01, "drift must be measured against the grid the pacer skipped to"
    finally:
        env.close()


class _TwoDeviceTask(FlatToyTask):
    """Device 'a' takes the actions; device 'b' is sent nothing by actuate, only its stop command."""

    def sense(self, windows):
        return np.zeros(self.OBS_DIM)

    def actuate(self, action):
        return {"a": action}

    def stop_commands(self):
        return {"a": np.zeros(ACTION_DIM), "b": np.zeros(ACTION_DIM)}


@pytest.mark.parametrize("run_mode", ["singlethread", "multiprocess"])
def test_actuate_sends_only_to_the_devices_it_names_and_episode_end_stops_all(run_mode):
    env = RTRLBaseEnv(_TwoDeviceTask(), {"a": CounterSensor(), "b": CounterSensor()}, dt=0.02,
                      run_mode=run_mode, max_episode_steps=5)
    try:
        env.reset()
        action = np.full(ACTION_DIM, 0.5)
        for step in range(5):
            truncated = env.step(action)[3]
            assert truncated == (step == 4)
        a, b = env.devices["a"].actuator_buffer, env.devices["b"].actuator_buffer
        assert b.num_writes == 1 and np.all(b.latest()[0] == 0), "b got something besides its stop command"
        assert a.num_writes >= 6 and np.all(a.latest()[0] == 0), "the episode end did not stop device a"
        with pytest.raises(EnvError, match=re.escape("after the episode ended: call reset() first")):
            env.step(action)
    finally:
        env.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_FIFO needs root or CAP_SYS_NICE")
def test_realtime_priority_runs_the_cycle_under_sched_fifo_and_close_gives_the_scheduler_back(envs):
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    env = envs(realtime_priority=10)
    try:
        env.reset()
        env.step(ACTION)
        assert os.sched_getscheduler(0) == os.SCHED_FIFO and os.sched_getparam(0).sched_priority == 10
    finally:
        env.close()
        if os.sched_getscheduler(0) != os.SCHED_OTHER:  # keep the other tests' timing honest
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            pytest.fail("close() left the calling thread under SCHED_FIFO")


class _BrokenStopTask(FlatToyTask):
    """Its stop commands cannot be built: what a failed stop looks like to the env."""

    MESSAGE = "stop command builder offline"

    def stop_commands(self):
        raise RuntimeError(self.MESSAGE)


def test_a_failed_stop_command_at_close_is_logged_and_raised_after_everything_is_closed(caplog):
    segments = own_segments()
    env = RTRLBaseEnv(_BrokenStopTask(), {"toy": CounterSensor()}, dt=0.02)
    env.reset()
    env.step(ACTION)
    pids = env_pids(env)
    with caplog.at_level("ERROR", logger="rtrl_env.base_env"):
        with pytest.raises(EnvError, match=re.escape(f"closing left errors: stop commands failed: {_BrokenStopTask.MESSAGE}")):
            env.close()
    assert any(_BrokenStopTask.MESSAGE in r.getMessage() and "could not be sent" in r.getMessage()
               for r in caplog.records), "the failed stop was not logged"
    assert wait_until(lambda: all_gone(pids), 2.0) and own_segments() == segments
    env.close()  # raised once; closing again is quiet


def test_a_failed_stop_after_a_crash_is_logged_and_named_in_the_failure(caplog):
    env = RTRLBaseEnv(_BrokenStopTask(), {"toy": CrashOnDemand()}, dt=0.02, run_mode="singlethread")
    try:
        env.reset()
        env.devices["toy"].crash()
        with caplog.at_level("ERROR", logger="rtrl_env.base_env"):
            with pytest.raises(EnvError, match=re.escape(f"(and the stop commands failed: {_BrokenStopTask.MESSAGE}")):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    env.step(ACTION)
        assert any(_BrokenStopTask.MESSAGE in r.getMessage() for r in caplog.records)
    finally:
        env.close()


def test_a_failed_stop_on_a_stale_stream_is_said_in_the_error_and_raised_again_at_close():
    from rtrl_env.freshness import FreshnessConfig

    env = RTRLBaseEnv(_BrokenStopTask(), {"toy": CounterSensor()}, dt=0.02, windows={"toy": 2},
                      freshness=FreshnessConfig(budget_s={"toy": 0.05}))
    toy = env.devices["toy"]
    try:
        env.reset()
        os.kill(toy.pid, signal.SIGSTOP)
        with pytest.raises(EnvError, match=re.escape(f"the stop commands failed ({_BrokenStopTask.MESSAGE}; raised "
                                                     "again at close)")):
            for _ in range(100):
                env.step(ACTION)
        os.kill(toy.pid, signal.SIGCONT)
        with pytest.raises(EnvError, match=re.escape(f"stop commands failed: {_BrokenStopTask.MESSAGE}")):
            env.close()
    finally:
        if pid_alive(toy.pid):
            os.kill(toy.pid, signal.SIGCONT)
        env.close()


def test_a_failed_stop_at_the_episode_end_raises_at_once_and_again_at_close(caplog):
    env = RTRLBaseEnv(_BrokenStopTask(), {"toy": CounterSensor()}, dt=0.02, run_mode="singlethread",
                      max_episode_steps=2)
    try:
        env.reset()
        env.step(ACTION)
        with caplog.at_level("ERROR", logger="rtrl_env.base_env"):
            with pytest.raises(EnvError, match=re.escape("the episode ended but its stop commands failed: "
                                                         f"{_BrokenStopTask.MESSAGE}")):
                env.step(ACTION)
        assert any(_BrokenStopTask.MESSAGE in r.getMessage() for r in caplog.records)
        with pytest.raises(EnvError, match=re.escape(f"stop commands failed: {_BrokenStopTask.MESSAGE}")):
            env.close()
    finally:
        env.close()
