"""A training session in-process against a stand-in env: the loop, checkpoints, resume, evaluation,
Ctrl-C, and a learner that fails for good.

TEST FIXTURE: ``StandInReacher`` (tests/support/stand_in_reacher.py) is a small gymnasium env with
the visual reacher's spaces, substituted for the env the session builds, so the session's own logic
is tested without the robot processes; the updaters, learner processes, replay buffers and checkpoints are the real ones. The
end-to-end tests of the real script on the real sim env are in tests/examples/test_franka_reacher.py.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(240)

from sac.training import cli, session
from tests.support.stand_in_reacher import StandInReacher

ARGS = ["--episode_length", "1.0", "--init_step", "50", "--env_step", "100", "--replay_buffer_capacity",
        "1000", "--save_model_freq", "50", "--batch_size", "16", "--seed", "4", "--no-save_tb"]


@pytest.fixture
def script(monkeypatch):
    """cli.main with the stand-in env; ``script.envs`` lists the envs it built."""
    envs = []

    def make_env(config):
        env = config.env
        envs.append(StandInReacher(env.image_width, env.image_height, env.image_history, env.dt))
        return envs[-1]

    monkeypatch.setattr(session, "make_env", make_env)
    cli.envs = envs
    yield cli
    del cli.envs


@pytest.mark.parametrize("mode", [[], ["--async_mode"]], ids=["serial", "async"])
def test_training_logs_each_episode_checkpoints_and_resumes_with_the_same_counts(script, tmp_path, capsys,
                                                                                 mode):
    assert script.main([*ARGS, *mode, "--work_dir", str(tmp_path)]) == 0
    (name,) = os.listdir(tmp_path / "results")
    run_dir = tmp_path / "results" / name
    assert name == f"{'SACv2' if mode else 'SACv0'}_reaching_dt=0.04_bs=16_dim=64*48_4"
    assert script.envs[-1].closed
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| train |")]
    assert [line.split(" | ")[1] for line in lines] == [f"E: {i}" for i in range(1, 7)]
    assert float(lines[-1].rsplit("NUM: ", 1)[1]) > 0
    assert (run_dir / "learning_curve.png").stat().st_size > 0
    assert (run_dir / "cycle_histogram.png").stat().st_size > 0
    assert (run_dir / "model" / "latest").read_text().strip() == "step_150"
    figures = json.loads((run_dir / "summary.json").read_text())
    assert figures["env_steps"] == 150 and figures["episodes"] == 6 and figures["num_updates"] > 0
    assert 30 < figures["period_p50_ms"] < 80  # the stand-in paces 40 ms cycles
    assert figures["observation_keys"] == ["image", "proprioception"]
    assert figures["stream_age_ms"]["camera"] == {"p50": pytest.approx(5.0), "p99": pytest.approx(10.0)}
    assert figures["staleness_updates"]["p50"] >= 0 and figures["staleness_updates"]["p99"] >= 0
    if not mode:  # serial: the agent acts with the weights it has just updated
        assert figures["staleness_updates"] == {"p50": 0.0, "p99": 0.0}

    # Resume with a longer budget: the counts continue where the checkpoint left them.
    assert script.main(["--resume", str(run_dir), "--env_step", "150"]) == 0
    out = capsys.readouterr().out
    assert f"resumed {run_dir}/model/step_150: step 150, episode 6" in out
    lines = [line for line in out.splitlines() if line.startswith("| train |")]
    assert lines[0].startswith("| train | E: 7 | S: 175 |") and lines[-1].startswith("| train | E: 8 | S: 200 |")
    with open(run_dir / "train.csv") as f:
        assert [int(float(r["episode/number"])) for r in csv.DictReader(f)] == list(range(1, 9))
    leaked = [n for n in os.listdir("/dev/shm") if f"_{os.getpid()}_" in n]
    assert not leaked, f"shared memory left behind: {leaked}"


def test_an_existing_results_directory_is_refused_with_the_resume_command(script, tmp_path, capsys):
    os.makedirs(tmp_path / "results" / "SACv0_reaching_dt=0.04_bs=16_dim=64*48_4")
    assert script.main([*ARGS, "--work_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already exists; continue it with --resume" in err


def test_evaluation_runs_deterministic_episodes_from_a_checkpoint(script, tmp_path, capsys):
    assert script.main([*ARGS, "--env_step", "0", "--work_dir", str(tmp_path / "train")]) == 0
    (name,) = os.listdir(tmp_path / "train" / "results")
    checkpoint = tmp_path / "train" / "results" / name / "model" / "step_50"
    capsys.readouterr()
    assert script.main([*ARGS, "--eval", "--eval_episodes", "2", "--load_model", str(checkpoint),
                        "--work_dir", str(tmp_path / "eval")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| eval |")]
    assert len(lines) == 2


def test_ctrl_c_finishes_the_step_saves_a_loadable_checkpoint_and_keeps_the_learner_alive(script, tmp_path, capsys):
    def press_ctrl_c_when_learning():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "| train | E: 3 " not in capsys.readouterr().out:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_when_learning, daemon=True)
    presser.start()
    previous = signal.getsignal(signal.SIGINT)
    assert script.main([*ARGS, "--async_mode", "--env_step", "100000", "--work_dir", str(tmp_path)]) == 130
    presser.join(5)
    assert signal.getsignal(signal.SIGINT) is previous  # main() put the handler back
    assert "stopped by SIGINT at step" in capsys.readouterr().err
    (name,) = os.listdir(tmp_path / "results")
    model = tmp_path / "results" / name / "model"
    latest = (model / "latest").read_text().strip()
    step = int(latest.split("_")[1])
    assert 75 <= step < 100_000 and script.envs[-1].closed
    import torch
    state = torch.load(model / latest / "agent.pt", weights_only=False)
    assert state["num_updates"] > 0  # written by the learner, alive after the Ctrl-C


def _learner_pid() -> int | None:
    """This process's spawn child: the learner (the stand-in env starts no processes)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"multiprocessing.spawn" in cmdline:
            return int(pid)
    return None


@pytest.mark.parametrize("restarts", [0, 1], ids=["no-restart", "restart-used-up"])
def test_a_learner_that_fails_for_good_stops_the_run_with_a_whole_checkpoint_and_the_resume_command(
        script, tmp_path, capsys, restarts):
    killed = []

    def kill_learner_when_learning():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(killed) <= restarts:
            # After E: 5 (step 125) the checkpoint of step 100 holds a learned agent.
            if "| train | E: 5 " in capsys.readouterr().out or killed:
                pid = _learner_pid()
                if pid is not None and pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_learner_when_learning, daemon=True)
    killer.start()
    code = script.main([*ARGS, "--async_mode", "--env_step", "100000", "--learner_restarts", str(restarts),
                        "--work_dir", str(tmp_path)])
    killer.join(5)
    err = capsys.readouterr().err
    assert code == 1 and len(killed) == restarts + 1, err[-2000:]
    (name,) = os.listdir(tmp_path / "results")
    run_dir = tmp_path / "results" / name
    assert "the SAC learner failed for good at step" in err and "exited with code -9" in err, err[-2000:]
    assert f"--resume {run_dir}" in err
    model = run_dir / "model"
    latest = model / (model / "latest").read_text().strip()
    import torch
    agent = torch.load(latest / "agent.pt", weights_only=False)
    trainer = torch.load(latest / "trainer.pt", weights_only=False)
    assert trainer["step"] >= 125 and agent["num_updates"] > 0
    assert agent["critic_optimizer"]["state"]  # a whole agent: the learner's last good state, optimizers included
    assert script.envs[-1].closed
