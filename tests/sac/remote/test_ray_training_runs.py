"""Training runs whose learner is a real Ray actor on a real second node: a run resumed from the
learner's own checkpoint, and every way the learner side fails: its process killed (Ray restarts it
from its checkpoint), frozen (our watchdog), its node's raylet killed, and the robot side's bridge
killed. The run goes on, or stops cleanly: arm stopped, a checkpoint saved, one message with the
cause and the resume command.

The acting side is the session in this process with ``StandInReacher`` (TEST FIXTURE,
tests/support/stand_in_reacher.py) as its env; the learner, its Ray cluster, the bridge process,
the shared memory and the checkpoints are real.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import numpy as np
import pytest
import torch

from ray_fixtures import Watcher, kill, learner_pid, ray_args

from sac.remote.bridge import BRIDGE_NICE
from sac.training import cli, session
from tests.support.stand_in_reacher import StandInReacher

pytestmark = pytest.mark.timeout(600)

ARGS = ["--episode_length", "1.0", "--init_step", "50", "--replay_buffer_capacity", "1000", "--save_model_freq",
        "50", "--batch_size", "16", "--seed", "5", "--no-save_tb"]
WATCHDOG = ["--learner_warn_s", "2", "--learner_timeout_s", "8"]


@pytest.fixture
def script(monkeypatch):
    """cli.main with the stand-in env; ``script.updaters`` lists the updaters its sessions made."""
    updaters = []

    def make_env(config):
        env = config.env
        return StandInReacher(env.image_width, env.image_height, env.image_history, env.dt)

    def make_updater(*args):
        updaters.append(real_make_updater(*args))
        return updaters[-1]

    real_make_updater = session.make_updater
    monkeypatch.setattr(session, "make_env", make_env)
    monkeypatch.setattr(session, "make_updater", make_updater)
    cli.updaters = updaters
    yield cli
    del cli.updaters


def run_dir_of(work_dir) -> str:
    (name,) = os.listdir(os.path.join(work_dir, "results"))
    return os.path.join(work_dir, "results", name)


def latest(run_dir: str) -> str:
    model = os.path.join(run_dir, "model")
    with open(os.path.join(model, "latest")) as f:
        return os.path.join(model, f.read().strip())


def assert_stopped_cleanly_with_a_checkpoint(code: int, watcher: Watcher, run_dir: str, min_step: int) -> str:
    """Exit 1, the failure and the resume command said, a whole checkpoint past ``min_step``."""
    assert code == 1, watcher.err[-3000:]
    assert "the SAC learner failed for good at step" in watcher.err and "the arm is stopped" in watcher.err
    assert f"--resume {run_dir}" in watcher.err
    checkpoint = latest(run_dir)
    trainer = torch.load(os.path.join(checkpoint, "trainer.pt"), weights_only=False)
    agent = torch.load(os.path.join(checkpoint, "agent.pt"), weights_only=False)
    assert trainer["step"] >= min_step
    assert agent["critic_optimizer"]["state"] and agent["num_updates"] > 0  # a whole, learned agent
    with open(os.path.join(checkpoint, "learner.json")) as f:
        assert "last good copy" in json.load(f)["note"]
    return checkpoint


def assert_the_cycle_went_on(checkpoint: str, since_step: int, min_steps: int) -> None:
    """The action cycles after ``since_step`` (at least ``min_steps`` of them) kept the 40 ms period:
    the loop never waited on the learner."""
    trainer = torch.load(os.path.join(checkpoint, "trainer.pt"), weights_only=False)
    steps = trainer["step"] - since_step
    assert steps >= min_steps, f"only {steps} steps after the fault"
    periods = np.array(trainer["periods"][-steps:])
    assert 0.030 < np.median(periods) < 0.080 and periods.max() < 1.0, periods


def test_a_ray_learner_killed_is_restarted_by_ray_from_its_checkpoint_and_weights_flow_again(
        script, cluster, tmp_path, capsys):
    killed = {}

    def kill_learner():
        updater = script.updaters[0]
        with open(os.path.join(updater.learner_info["directory"], "agent.pt"), "rb") as f:
            killed["updates_on_disk"] = torch.load(f, weights_only=False)["num_updates"]
        killed["pid"] = learner_pid(cluster)
        kill(killed["pid"])

    watcher = Watcher(capsys).on("| train | E: 5 ", kill_learner).start()  # after the save of step 100
    code = script.main([*ARGS, *ray_args(cluster), "--env_step", "250", "--learner_restarts", "1",
                        "--work_dir", str(tmp_path)])
    watcher.stop()
    assert code == 0, watcher.err[-3000:]
    assert killed["updates_on_disk"] > 0
    assert (f"was restarted by Ray (1 of 1): it resumed from its checkpoint at update {killed['updates_on_disk']} "
            in watcher.err), watcher.err[-3000:]
    with open(os.path.join(run_dir_of(tmp_path), "summary.json")) as f:
        figures = json.load(f)
    assert figures["learner_restarts"] == 1
    (restart,) = figures["learner_events"]
    assert restart["pid"] != killed["pid"] and "weights_again_wall" in restart  # new weights reached the actor
    assert figures["num_updates"] > killed["updates_on_disk"]  # and learning went on from the checkpoint
    # Nothing the actor sent was lost: what the dead process had not stored was sent again.
    assert figures["transitions_sent"] == figures["transitions_stored"] == 300
    assert figures["transitions_lost"] == 0


def test_a_frozen_ray_learner_is_flagged_by_our_watchdog_within_its_budget(script, cluster, tmp_path, capsys):
    frozen = {}

    def freeze_learner():
        frozen["pid"] = learner_pid(cluster)
        frozen["at"] = time.monotonic()
        kill(frozen["pid"], signal.SIGSTOP)

    watcher = Watcher(capsys).on("| train | E: 5 ", freeze_learner)
    watcher.on("warning: no new weights from the learner").on("the watchdog stops the run at 8 s").start()
    try:
        code = script.main([*ARGS, *ray_args(cluster), *WATCHDOG, "--env_step", "100000",
                            "--work_dir", str(tmp_path)])
    finally:
        if "pid" in frozen:
            with contextlib.suppress(ProcessLookupError):  # the run's end killed it
                os.kill(frozen["pid"], signal.SIGCONT)
        watcher.stop()
    assert "warning: no new weights from the learner" in watcher.times, watcher.err[-3000:]
    warned = watcher.times["warning: no new weights from the learner"] - frozen["at"]
    stopped = watcher.times["the watchdog stops the run at 8 s"] - frozen["at"]
    # Ray itself would notice after about a minute; ours warns after 2 s and stops after 8 s (+ the
    # time a loaded machine takes to show it).
    assert 1.5 < warned < 2 + 10 and 7.5 < stopped < 8 + 10, (warned, stopped)
    run_dir = run_dir_of(tmp_path)
    checkpoint = assert_stopped_cleanly_with_a_checkpoint(code, watcher, run_dir, min_step=125)
    # The steps after the freeze kept their cycle; the save at the episode's end (step 150) then
    # waited for the learner, no longer than the watchdog's budget.
    assert_the_cycle_went_on(checkpoint, since_step=125, min_steps=25)


def test_a_killed_raylet_of_the_ray_learner_node_keeps_the_cycle_and_stops_the_run_cleanly(
        script, cluster, tmp_path, capsys):
    watcher = Watcher(capsys).on("| train | E: 5 ", lambda: kill(cluster.learner.pid_of("raylet"))).start()
    code = script.main([*ARGS, *ray_args(cluster), *WATCHDOG, "--env_step", "100000", "--work_dir", str(tmp_path)])
    watcher.stop()
    checkpoint = assert_stopped_cleanly_with_a_checkpoint(code, watcher, run_dir_of(tmp_path), min_step=125)
    # Ray's signal (the learner died with its node) or, if that does not come, our watchdog.
    assert "no new weights from the learner" in watcher.err or "died" in watcher.err
    assert_the_cycle_went_on(checkpoint, since_step=125, min_steps=1)


def test_a_killed_ray_bridge_keeps_the_cycle_and_stops_the_run_cleanly(script, cluster, tmp_path, capsys):
    killed = {}

    def kill_bridge():
        killed["learner"] = learner_pid(cluster)
        pid = script.updaters[0].bridge_pid
        # Alive and working, it yields to the action cycle: SCHED_BATCH, BRIDGE_NICE above its parent's.
        killed["policy"] = os.sched_getscheduler(pid), os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(
            os.PRIO_PROCESS, 0)
        kill(pid)

    watcher = Watcher(capsys).on("| train | E: 5 ", kill_bridge).start()
    try:
        code = script.main([*ARGS, *ray_args(cluster), *WATCHDOG, "--env_step", "100000",
                            "--work_dir", str(tmp_path)])
    finally:
        watcher.stop()
        if killed.get("learner"):
            with contextlib.suppress(ProcessLookupError):  # nobody is left to end it (it would after 2 minutes)
                os.kill(killed["learner"], signal.SIGKILL)
    bridge = script.updaters[0].bridge_pid
    assert killed["policy"] == (os.SCHED_BATCH, BRIDGE_NICE)
    assert f"the Ray bridge process (PID {bridge}) exited with code -9" in watcher.err, watcher.err[-3000:]
    checkpoint = assert_stopped_cleanly_with_a_checkpoint(code, watcher, run_dir_of(tmp_path), min_step=125)
    assert_the_cycle_went_on(checkpoint, since_step=125, min_steps=1)


def test_a_resumed_ray_run_continues_from_the_learners_own_checkpoint(script, cluster, tmp_path, capsys):
    assert script.main([*ARGS, *ray_args(cluster), "--env_step", "100", "--work_dir", str(tmp_path)]) == 0
    run_dir = run_dir_of(tmp_path)
    first = capsys.readouterr()
    with open(os.path.join(latest(run_dir), "learner.json")) as f:
        saved = json.load(f)
    robot_agent = torch.load(os.path.join(latest(run_dir), "agent.pt"), weights_only=False)
    assert saved["learner_checkpoint"]["transitions"] == 150 and robot_agent["num_updates"] > 0
    # The run's end left nothing behind on the cluster: the last actor shut the learner down (it saved).
    assert learner_pid(cluster) is None
    learner_dir = script.updaters[0].learner_info["directory"]
    on_disk = torch.load(os.path.join(learner_dir, "agent.pt"), weights_only=False)["num_updates"]
    assert on_disk >= robot_agent["num_updates"]

    assert script.main(["--resume", run_dir, "--env_step", "150"]) == 0, first.err[-2000:]
    out = capsys.readouterr()
    assert f"resumed {run_dir}/model/step_150: step 150, episode 6" in out.out
    assert f"it resumed from its checkpoint in {learner_dir} (update {on_disk}, 150 transitions)" in out.err
    lines = [line for line in out.out.splitlines() if line.startswith("| train |")]
    assert lines[0].startswith("| train | E: 7 | S: 175 |") and lines[-1].startswith("| train | E: 8 | S: 200 |")
    with open(os.path.join(run_dir, "summary.json")) as f:
        figures = json.load(f)
    assert figures["transitions_sent"] == figures["transitions_stored"] == 50 and figures["transitions_lost"] == 0
    assert figures["num_updates"] > on_disk
    with open(os.path.join(latest(run_dir), "learner.json")) as f:
        assert json.load(f)["learner_checkpoint"]["transitions"] == 200  # the journal holds the whole run
