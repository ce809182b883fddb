"""examples/franka_reacher.py end to end on the real sim env: serial and async training runs, every
way a run stops (Ctrl-C twice, SIGTERM, a dying device, a full disk) with a loadable checkpoint,
resume, one live process per run, evaluation, and output that never splices lines."""
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


# /dev/shm before each script started: a pid is reused, and a segment left by a killed process of
# an earlier session must not count against the script that now has its pid.
_SHM_BEFORE: dict[int, set[str]] = {}


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "MUJOCO_GL": "egl", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    before = set(os.listdir("/dev/shm"))
    proc = subprocess.Popen([sys.executable, SCRIPT, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _SHM_BEFORE[proc.pid] = before
    return proc


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
    leaked = [n for n in set(os.listdir("/dev/shm")) - _SHM_BEFORE.pop(proc.pid, set()) if f"_{proc.pid}_" in n]
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
    replay = SharedReplayBuffer(space, 2, args["replay_buffer_capacity"],
                                extras=("age/robot", "age/target", "age/camera", "period", "weights_updates"))
    try:
        replay.load(os.path.join(checkpoint, "replay.npz"))
        assert len(replay) > 0
        # Every transition carries its timing: stream ages and the period (s), the acting weights.
        extras = replay.sample(64, np.random.default_rng(0)).extras
        for stream in ("robot", "target", "camera"):
            assert np.all((extras[f"age/{stream}"] >= 0) & (extras[f"age/{stream}"] < 5.0)), extras[f"age/{stream}"]
        periods = extras["period"][np.isfinite(extras["period"])]
        assert periods.size and 0.02 < np.median(periods) < 0.08  # 40 ms cycles
        assert np.all(extras["weights_updates"] >= 0)
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
    assert re.search(r"^replay buffer: 2000 transitions \(image: \d+ frames of 3x48x64 uint8, proprioception: "
                     r"float32 \(16,\)\): \d+\.\d\d GB of shared memory$",
                     out, re.M), out[:2000]
    lines = [line for line in out.splitlines() if line.startswith("| train |")]
    assert len(lines) == 6 and all(LINE.match(line) for line in lines), out[-2000:]
    assert float(lines[-1].rsplit("NUM: ", 1)[1]) > 0  # it learned
    # Into a pipe there is no progress bar: progress comes as whole lines of its own.
    assert "\r" not in out
    assert re.search(r"^initial random steps: 50/50$", out, re.M), out[:2000]
    with open(os.path.join(run_dir, "train.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(float(r["episode/number"])) for r in rows] == [1, 2, 3, 4, 5, 6]
    for name in ("args.json", "learning_curve.png", "cycle_histogram.png", "tb"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert assert_complete_checkpoint(run_dir)["step"] == 150


@pytest.mark.timeout(400)
def test_ctrl_c_twice_saves_a_loadable_checkpoint_and_resume_continues_the_counts(tmp_path):
    args = [*SMALL, "--async_mode", "--env_step", "100000", "--work_dir", str(tmp_path)]
    proc = start(args)
    seen = read_until(proc, "| train | E: 4 ")  # wait for the second learning episode
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    time.sleep(0.09)
    os.killpg(proc.pid, signal.SIGINT)  # an impatient second Ctrl-C must not abort the save
    out = "".join(seen) + finish(proc, timeout=120)
    assert proc.returncode == 130, out[-2000:]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-2000:]
    assert "stopped by SIGINT at step" in out and "--resume" in out
    run_dir = run_dir_of(str(tmp_path))
    state = assert_complete_checkpoint(run_dir)
    assert state["step"] >= 100 and state["episode"] >= 4

    # Resume: the same step and episode counts, then on for another episode before a Ctrl-C.
    proc = start(["--resume", run_dir])
    seen = read_until(proc, "| train |")
    os.killpg(proc.pid, signal.SIGINT)
    out = "".join(seen) + finish(proc, timeout=120)
    assert f"resumed {run_dir}/model/step_{state['step']}" in out
    first = next(line for line in out.splitlines() if line.startswith("| train |"))
    assert first.startswith(f"| train | E: {state['episode'] + 1} | S: {state['step'] + 25} |")


@pytest.mark.timeout(400)
def test_sigterm_saves_and_a_second_process_on_the_same_run_is_refused_while_it_lives(tmp_path):
    args = [*SMALL, "--async_mode", "--env_step", "100000", "--work_dir", str(tmp_path)]
    proc = start(args)
    seen = read_until(proc, "| train | E: 3 ")
    run_dir = run_dir_of(str(tmp_path))
    for second in (args, ["--resume", run_dir]):
        other = start(second)
        out = finish(other, timeout=60)
        assert other.returncode == 2 and f"{run_dir} is running (PID {proc.pid})" in out, out[-2000:]
    proc.send_signal(signal.SIGTERM)  # what kill, timeout, systemd and docker send
    out = "".join(seen) + finish(proc, timeout=120)
    assert proc.returncode == 143, out[-2000:]
    assert f"stopped by SIGTERM at step" in out and "Traceback" not in out
    state = assert_complete_checkpoint(run_dir)
    assert state["step"] >= 75


@pytest.mark.timeout(300)
def test_a_full_disk_stops_the_run_with_a_message_naming_the_directory_and_sizes(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=True)
    try:
        proc = start([*SMALL, "--env_step", "100000", "--no-save_tb", "--work_dir", str(disk)])
        out = finish(proc, timeout=240)
        assert proc.returncode == 1, out[-2000:]
        assert re.search(r"(not enough free space in .*/model for a checkpoint|writing the checkpoint of step \d+ in "
                         r".*/model failed).* MB .*free", out), out[-2000:]
        assert "Traceback" not in out and "--resume" in out
        model = os.path.join(run_dir_of(str(disk)), "model")
        assert not [n for n in os.listdir(model) if n.startswith(".tmp")], os.listdir(model)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


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
    assert proc.returncode == 2 and out == (f"results directory {run_dir} already exists; continue it with --resume "
                                            f"{run_dir}, or pick another --seed or --work_dir, or delete it\n")

    checkpoint = os.path.join(run_dir, "model", "step_50")
    proc = start([*SMALL, "--eval", "--eval_episodes", "2", "--load_model", checkpoint,
                  "--work_dir", str(tmp_path / "eval")])
    out = finish(proc, timeout=120)
    assert proc.returncode == 0, out[-2000:]
    assert len([line for line in out.splitlines() if line.startswith("| eval |")]) == 2
    with open(os.path.join(run_dir_of(str(tmp_path / "eval")), "eval.csv")) as f:
        returns = [float(r["episode/return"]) for r in csv.DictReader(f)]
    assert len(returns) == 2 and all(np.isfinite(returns))


def _screen_lines(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: a carriage return moves back to the line's start."""
    shown = []
    for chunk in raw.replace("\r\n", "\n").split("\n"):
        line = ""
        for part in chunk.split("\r"):
            line = part + line[len(part):]
        shown.append(line.rstrip())
    return shown


@pytest.mark.timeout(200)
def test_on_a_terminal_the_progress_bar_never_shares_a_line_with_a_console_line(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a 160-column terminal
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, SCRIPT, *SMALL, "--env_step", "25", "--work_dir", str(tmp_path)],
                            cwd=ROOT, env=env, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    raw = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the pty closes when the script and its children are gone
            break
        if not data:
            break
        raw += data
    os.close(leader)
    assert proc.wait(timeout=60) == 0, raw[-2000:]
    text = raw.decode(errors="replace")
    assert "initial random steps" in text and "\r" in text, "no progress bar was drawn on the terminal"
    train = [line for line in _screen_lines(text) if "| train |" in line]
    assert len(train) == 3 and all(LINE.match(line) for line in train), train
