"""AsyncLearner: a real learner process on a real shared replay buffer."""
from __future__ import annotations

import glob
import os
import re
import tempfile
import signal
import time

import numpy as np
import pytest
import torch
from sac_fixtures import MULTI_SPACE, SPACE, A, make_multi_obs, make_obs, tiny_config

from sac.errors import LearnerError
from sac.agent import SACAgent
from sac.async_learner import AsyncLearner, LearnerConfig
from sac.replay_buffer import SharedReplayBuffer

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_leaked_segments")]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def setup():
    replay = SharedReplayBuffer(SPACE, A, capacity=500)
    rng = np.random.default_rng(0)
    for s in range(100):
        replay.add(make_obs(s, rng), rng.uniform(-1, 1, A).astype(np.float32), 1.0, make_obs(s + 1, rng), False)
    agent = SACAgent(SPACE, A, tiny_config(), seed=0)
    learners = []

    def make(**config) -> AsyncLearner:
        learners.append(AsyncLearner(agent, replay, LearnerConfig(**config)).start())
        learners[-1].wait_ready()
        return learners[-1]

    yield agent, make
    for learner in learners:
        learner.stop()
    replay.close()


def test_learner_updates_up_to_the_cap_and_the_actor_pulls_new_weights(setup):
    agent, make = setup
    learner = make(max_update_freq=2, update_after=10)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    learner.set_env_step(10)
    time.sleep(0.3)
    assert learner.num_updates == 0  # no updates during the initial random steps
    learner.set_env_step(30)
    wait_for(lambda: learner.num_updates == 40, 30, "40 updates")
    time.sleep(0.3)
    assert learner.num_updates == 40  # capped at 2 updates per env step after update_after
    assert learner.pull_weights(agent.policy) == 41  # initial weights + one version per update
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    stats = learner.stats()
    assert np.isfinite(stats["train/critic_loss"]) and stats["train/batch_reward"] == pytest.approx(1.0)
    learner.raise_if_failed()


def test_save_agent_writes_the_learners_full_state_atomically(setup, tmp_path):
    agent, make = setup
    learner = make(max_update_freq=1, update_after=0)
    learner.set_env_step(7)
    wait_for(lambda: learner.num_updates == 7, 30, "7 updates")
    path = tmp_path / "agent.pt"
    learner.save_agent(str(path))
    assert sorted(os.listdir(tmp_path)) == ["agent.pt"]  # no temporary file left
    restored = SACAgent(SPACE, A, tiny_config(), seed=5)
    restored.load_state_dict(torch.load(path, weights_only=False))
    assert restored.num_updates == 7


def test_learner_exception_reaches_the_actor_with_its_traceback_and_the_actor_keeps_acting(setup, tmp_path):
    agent, make = setup
    learner = make(max_update_freq=1, update_after=0)
    weights = [p.detach().clone() for p in agent.policy.parameters()]
    with pytest.raises(LearnerError, match=re.escape("the SAC learner process failed")) as err:
        learner.save_agent(str(tmp_path / "missing_dir" / "agent.pt"))  # torch.save fails in the child
    assert "Traceback" in str(err.value) and "missing_dir" in str(err.value)
    with pytest.raises(LearnerError):
        learner.raise_if_failed()  # and keeps saying so
    assert learner.pull_weights(agent.policy) in (None, 1)
    assert all(torch.equal(a, b) for a, b in zip(weights, agent.policy.parameters()))
    assert agent.act(make_obs(0)).shape == (A,)


def test_a_killed_learner_is_reported_by_exit_code(setup):
    _, make = setup
    learner = make()
    os.kill(learner.pid, signal.SIGKILL)
    wait_for(lambda: not learner.alive, 10, "the learner to die")
    with pytest.raises(LearnerError, match=re.escape("exited with code -9")):
        learner.raise_if_failed()


def test_ctrl_c_does_not_stop_the_learner_and_stop_ends_it_cleanly(setup):
    _, make = setup
    learner = make()
    os.kill(learner.pid, signal.SIGINT)  # what a Ctrl-C sends the whole process group
    time.sleep(0.3)
    learner.raise_if_failed()
    assert learner.alive
    learner.stop()
    assert not learner.alive and learner.exitcode == 0


def test_a_failed_learner_is_restarted_from_the_last_saved_agent_until_the_restarts_run_out(setup, tmp_path,
                                                                                            capfd):
    agent, make = setup
    learner = make(max_update_freq=1, update_after=0, max_restarts=1)
    learner.set_env_step(7)
    wait_for(lambda: learner.num_updates == 7, 30, "7 updates")
    learner.save_agent(str(tmp_path / "agent.pt"))  # the state a restart resumes from
    learner.set_env_step(12)
    wait_for(lambda: learner.num_updates == 12, 30, "12 updates")
    first = learner.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not learner.alive, 10, "the learner to die")

    # Restart from a real-time action loop, as in `franka_reacher.py --realtime_priority`.
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    try:
        start = time.monotonic()
        learner.raise_if_failed()  # restarts instead of raising
        restart_s = time.monotonic() - start
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    # The new child imports torch for seconds; the action loop must not wait for that.
    assert restart_s < 1.5, f"the restart held the action loop for {restart_s:.1f} s"
    assert learner.restarts == 1 and learner.pid != first
    assert learner.num_updates == 7  # the 5 updates after the save died with the process
    assert "restarting it (1 of 1) from the agent state of update 7" in capfd.readouterr().err
    version = learner.weights.version
    wait_for(lambda: learner.num_updates == 12, 30, "the new learner to catch up to the cap")
    assert learner.weights.version > version  # and it publishes weights the actor can pull
    assert learner.pull_weights(agent.policy) is not None
    # The default background policy (LearnerConfig.scheduler="idle"), not the loop's SCHED_FIFO.
    assert os.sched_getscheduler(learner.pid) == os.SCHED_IDLE
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "sac_learner_state_*"))  # read and removed
    stats = learner.stats()
    assert np.isfinite(stats["train/critic_loss"]) and stats["train/batch_reward"] == pytest.approx(1.0)
    learner.raise_if_failed()

    os.kill(learner.pid, signal.SIGKILL)
    wait_for(lambda: not learner.alive, 10, "the second learner to die")
    with pytest.raises(LearnerError, match=re.escape("exited with code -9")):
        learner.raise_if_failed()  # no restarts left


def test_a_learner_process_learns_from_two_cameras_a_vector_sensor_and_publishes_its_statistics():
    # The learner builds its agent from the pickled observation space; the buffer carries extras.
    replay = SharedReplayBuffer(MULTI_SPACE, A, capacity=200, extras=("period", "weights_version"))
    rng = np.random.default_rng(0)
    for s in range(60):
        replay.add(make_multi_obs(s), rng.uniform(-1, 1, A).astype(np.float32), 1.0, make_multi_obs(s + 1),
                   False, extras={"period": 0.04, "weights_version": 0.0})
    agent = SACAgent(MULTI_SPACE, A, tiny_config(), seed=0)
    learner = AsyncLearner(agent, replay, LearnerConfig(max_update_freq=1, update_after=0)).start()
    try:
        learner.wait_ready()
        learner.set_env_step(10)
        wait_for(lambda: learner.num_updates == 10, 60, "10 updates")
        learner.raise_if_failed()
        assert agent.normalizer.count.item() == 0  # the acting copy has not trained
        wait_for(lambda: learner.weights.version == 11, 10, "the weights of update 10")
        assert learner.pull_weights(agent.policy) == 11  # initial weights + one version per update
        assert agent.normalizer.count.item() == 10 * agent.config.batch_size
        # The ranges added were (s, -s, s / 2) for s < 60: the mean the learner saw is near (30, -30, 15).
        np.testing.assert_allclose(agent.normalizer.mean.numpy(), [29.5, -29.5, 14.75], atol=6)
        assert agent.act(make_multi_obs(3)).shape == (A,)
        assert np.isfinite(learner.stats()["train/critic_loss"])
    finally:
        learner.stop()
        replay.close()


def test_a_negative_restart_count_is_refused():
    with pytest.raises(ValueError, match="max_restarts=-1"):
        LearnerConfig(max_restarts=-1)


@pytest.mark.parametrize("scheduler, policy, nice", [("batch", os.SCHED_BATCH, 5), ("idle", os.SCHED_IDLE, 0),
                                                     ("other", os.SCHED_OTHER, 3)])
def test_the_learner_process_and_all_its_threads_run_under_the_configured_scheduler(setup, scheduler, policy, nice):
    agent, make = setup
    learner = make(scheduler=scheduler, nice=nice, num_threads=2, update_after=0)
    learner.set_env_step(5)
    wait_for(lambda: learner.num_updates >= 20, 60, "20 updates")  # torch's intra-op threads exist by now
    assert os.sched_getscheduler(learner.pid) == policy
    threads = [int(t) for t in os.listdir(f"/proc/{learner.pid}/task")]
    assert {os.sched_getscheduler(t) for t in threads} == {policy}
    base = os.getpriority(os.PRIO_PROCESS, os.getpid())
    assert {os.getpriority(os.PRIO_PROCESS, t) for t in threads} == {min(19, base + nice)}


def test_an_unknown_learner_scheduler_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=re.escape("LearnerConfig.scheduler='fifo': must be one of other, batch, idle")):
        LearnerConfig(scheduler="fifo")
