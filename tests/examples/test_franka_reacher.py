"""examples/franka_reacher.py end to end on the real sim env: serial and async training runs,
Ctrl-C with a loadable checkpoint, resume, evaluation, and the existing-directory message."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sac.agent import SACAgent
from sac.config import get_preset
from sac.replay_buffer import SharedReplayBuffer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "franka_reacher.py")
LINE = re.compile(r"^\| train \| E: \d+ \| S: \d+ \| D: \d+\.\d s \| R: -?\d+\.\d{4} \| BR: -?\d+\.\d{4} \| "
                  r"ALOSS: -?\d+\.\d{4} \| CLOSS: -?\d+\.\d{4} \| NUM: \d+\.\d{4}$")
# 1 s episodes (25 steps), 2 episodes of random actions, then 4 of learning.
SMALL = ["--episode_length", "1.0", "--init_step", "50", "--env_step", "100", "--replay_buffer_capacity",
         "2000", "--save_model_freq", "50", "--preset", "cpu", "--batch_size", "16", "--seed", "3"]


def run_dir_of(work_dir: str) -> str:
    (name,) = os.listdir(os.path.join(work_dir, "results"))
    return os.path.join(work_dir, "results", name)


def group_alive(pgid: int) -> list[int]:
    """Processes still in the process group (the script's children included)."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(pid))
    return alive


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "MUJOCO_GL": "egl", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, SCRIPT, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def read_until(proc: subprocess.Popen, prefix: str) -> list[str]:
    """The script's output lines up to and including the first that starts with ``prefix``."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            break
    return seen


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"script did not finish in {timeout} s; output:\n{out[-3000:]}")
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_alive(proc.pid), f"processes left behind: {group_alive(proc.pid)}"
    leaked = [n for n in os.listdir("/dev/shm") if f"_{proc.pid}_" in n]
    assert not leaked, f"shared memory left behind: {leaked}"
    return out


def assert_complete_checkpoint(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "model", "latest")) as f:
        checkpoint = os.path.join(run_dir, "model", f.read().strip())
    with open(os.path.join(run_dir, "args.json")) as f:
        args = json.load(f)
    shape = (3 * args["image_history"], args["image_height"], args["image_width"])
    preset = get_preset("cpu")
    preset.agent.batch_size = args["batch_size"]
    space = spaces.Dict({"image": spaces.Box(0, 255, shape, np.uint8),  # 2-joint env: proprio 14 + 2
                         "proprioception": spaces.Box(-np.inf, np.inf, (16,), np.float32)})
    agent = SACAgent(space, 2, preset.agent)
    agent.load_state_dict(torch.load(os.path.join(checkpoint, "agent.pt"), weights_only=False))
    replay = SharedReplayBuffer(space, 2, args["replay_buffer_capacity"])
    try:
        replay.load(os.path.join(checkpoint, "replay.npz"))
        assert len(replay) > 0
    finally:
        replay.close()
    return torch.load(os.path.join(checkpoint, "trainer.pt"), weights_only=False)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [[], ["--async_mode"]], ids=["serial", "async"])
def test_a_short_run_trains_logs_checkpoints_and_exits_cleanly(tmp_path, mode):
    out = finish(start([*SMALL, *mode, "--work_dir", str(tmp_path)]), timeout=240)
    run_dir = run_dir_of(str(tmp_path))
    assert os.path.basename(run_dir) == (f"{'SACv2' if mode else 'SACv0'}_reaching_dt=0.04_bs=16_"
                                         f"dim=64*48_3")
    assert re.search(r"^replay buffer: 2000 transitions, \d+ frames of 3x48x64 uint8, \d+\.\d\d GB of shared memory$",
                     out, re.M), out[:2000]
    lines = [line for line in out.splitlines() if line.startswith("| train |")]
    assert len(lines) == 6 and all(LINE.match(line) for line in lines), out[-2000:]
    assert float(lines[-1].rsplit("NUM: ", 1)[1]) > 0  # it learned
    with open(os.path.join(run_dir, "train.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["episode/number"])) for r in rows] == [1, 2, 3, 4, 5, 6]
    for name in ("args.json", "learning_curve.png", "cycle_histogram.png", "tb"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert assert_complete_checkpoint(run_dir)["step"] == 150


@pytest.mark.timeout(400)
def test_ctrl_c_saves_a_loadable_checkpoint_and_resume_continues_the_counts(tmp_path):
    args = [*SMALL, "--async_mode", "--env_step", "100000", "--work_dir", str(tmp_path)]
    proc = start(args)
    seen = read_until(proc, "| train | E: 4 ")  # wait for the second learning episode
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out = "".join(seen) + finish(proc, timeout=120)
    assert proc.returncode == 0, out[-2000:]
    run_dir = run_dir_of(str(tmp_path))
    state = assert_complete_checkpoint(run_dir)
    assert state["step"] >= 100 and state["episode"] >= 4

    # Resume: same step and episode counts, then on for two more episodes before a second Ctrl-C.
    # Its args.json loses two newer flags, as a run saved by an older version would: their
    # defaults fill in.
    with open(os.path.join(run_dir, "args.json")) as f:
        saved = json.load(f)
    del saved["learner_restarts"], saved["realtime_priority"]
    with open(os.path.join(run_dir, "args.json"), "w") as f:
        json.dump(saved, f)
    proc = start(["--resume", run_dir])
    seen = read_until(proc, "| train |")
    os.killpg(proc.pid, signal.SIGINT)
    out = "".join(seen) + finish(proc, timeout=120)
    assert f"resumed {run_dir}/model/step_{state['step']}" in out
    first = next(line for line in out.splitlines() if line.startswith("| train |"))
    assert first.startswith(f"| train | E: {state['episode'] + 1} | S: {state['step'] + 25} |")


def device_processes(pgid: int) -> list[int]:
    """The sim's device processes in the group: children of its forkserver."""
    def cmdline(pid: int) -> str:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")

    def parent(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    servers = {pid for pid in group_alive(pgid) if "forkserver" in cmdline(pid)}
    return [pid for pid in group_alive(pgid) if parent(pid) in servers]


@pytest.mark.timeout(300)
def test_a_device_that_dies_mid_run_stops_the_run_with_a_message_and_a_checkpoint(tmp_path):
    args = [*SMALL, "--async_mode", "--env_step", "100000", "--save_model_freq", "100000",
            "--work_dir", str(tmp_path)]
    proc = start(args)
    seen = read_until(proc, "| train | E: 3 ")  # wait for the first learning episode
    devices = device_processes(proc.pid)
    assert devices, "found no device process to kill"
    os.kill(devices[0], signal.SIGKILL)
    out = "".join(seen) + finish(proc, timeout=120)
    assert proc.returncode == 1, out[-2000:]
    assert "the environment failed at step" in out and "continue with --resume" in out, out[-2000:]
    state = assert_complete_checkpoint(run_dir_of(str(tmp_path)))
    assert state["step"] >= 75 and state["episode"] >= 3  # saved where it failed, not at a periodic save


@pytest.mark.timeout(200)
def test_existing_results_directory_gets_a_clear_message_and_eval_runs_a_checkpoint(tmp_path):
    proc = start([*SMALL, "--env_step", "0", "--work_dir", str(tmp_path)])
    out = finish(proc, timeout=150)
    assert proc.returncode == 0, out[-2000:]
    run_dir = run_dir_of(str(tmp_path))
    proc = start([*SMALL, "--env_step", "0", "--work_dir", str(tmp_path)])
    out = finish(proc, timeout=60)
    assert proc.returncode == 2 and f"results directory {run_dir} already exists" in out
    assert f"--resume {run_dir}" in out

    checkpoint = os.path.join(run_dir, "model", "step_50")
    proc = start([*SMALL, "--eval", "--eval_episodes", "2", "--load_model", checkpoint,
                  "--work_dir", str(tmp_path / "eval")])
    out = finish(proc, timeout=120)
    assert proc.returncode == 0, out[-2000:]
    assert len([line for line in out.splitlines() if line.startswith("| eval |")]) == 2
    with open(os.path.join(run_dir_of(str(tmp_path / "eval")), "eval.csv")) as f:
        returns = [float(r["episode/return"]) for r in csv.DictReader(f)]
    assert len(returns) == 2 and all(np.isfinite(returns))
