"""examples/new_sensor_example.py runs end to end: its sensors' data reach the observation, and with
``--train`` SAC trains on them through the library's training command (the seed's console lines, a
summary.json naming every key the agent consumed)."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from tests.support.processes import register_pid, segments_of

pytestmark = pytest.mark.timeout(180)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "new_sensor_example.py")
ENV = {**os.environ, "MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1"}
TRAIN_LINE = re.compile(r"^\| train \| E: \d+ \| S: \d+ \| D: \d+\.\d s \| R: -?\d+\.\d{4} \| BR: -?\d+\.\d{4} \| "
                        r"ALOSS: -?\d+\.\d{4} \| CLOSS: -?\d+\.\d{4} \| NUM: \d+\.\d{4}$")


def test_new_sensor_example_adds_a_camera_and_a_custom_sensor_to_the_observation():
    proc = subprocess.run([sys.executable, SCRIPT, "--steps", "20"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["observation_keys"] == ["image", "proprioception", "scene_image", "wrist_range"]
    assert summary["scene_image_shape"] == [3, 60, 80]
    assert 20 < summary["scene_image_mean"] < 235  # a rendered scene, not a blank frame
    # The wrist camera starts about 0.42 m above the monitor; the range finder must see that.
    ranges = summary["wrist_range_m"]
    assert 0.3 < ranges["first"] < 0.5 and 0.1 < ranges["min"] <= ranges["max"] < 0.8


def test_train_runs_the_library_training_with_both_sensors_until_the_time_limit(tmp_path):
    # The command with a 12 s limit, 1 s episodes, a small replay buffer and batch, and 50
    # random steps so that the agent learns within the limit.
    args = ["--train", "--time_limit", "12", "--work_dir", str(tmp_path), "--episode_length", "1.0",
            "--init_step", "50", "--replay_buffer_capacity", "2000", "--batch_size", "16", "--seed", "3"]
    proc = subprocess.Popen([sys.executable, SCRIPT, *args], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    register_pid(proc.pid)
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the training did not end in 150 s; output:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    (name,) = os.listdir(tmp_path / "results")
    run_dir = tmp_path / "results" / name
    # The seed's console lines, as examples/franka_reacher.py prints them.
    assert re.search(r"^replay buffer: 2000 transitions \(image: \d+ frames of 3x48x64 uint8, scene_image: \d+ frames "
                     r"of 3x60x80 uint8, proprioception: float32 \(16,\), wrist_range: float32 \(3,\)\): \d+\.\d\d GB "
                     r"of shared memory$", out, re.M), out[:2000]
    lines = [line for line in out.splitlines() if line.startswith("| train |")]
    assert lines and all(TRAIN_LINE.match(line) for line in lines), out[-3000:]
    step = re.search(rf"^time limit of 12 s reached at step (\d+); continue with: python examples/franka_reacher.py "
                     rf"--resume '?{re.escape(str(run_dir))}'?$", out, re.M)
    assert step, out[-3000:]
    assert re.search(rf"^saved {re.escape(str(run_dir))}/model/step_{step[1]} \(step {step[1]}, episode \d+\)$",
                     out, re.M), out[-3000:]
    with open(run_dir / "summary.json") as f:
        summary = json.load(f)
    assert summary["observation_keys"] == ["image", "proprioception", "scene_image", "wrist_range"]
    assert summary["env_steps"] == int(step[1])
    assert {"scene_image", "wrist_range"} <= set(summary["stream_age_ms"])  # their timing was recorded too
    with open(run_dir / "args.json") as f:  # what --resume re-imports
        assert json.load(f)["sensor"] == ["rtrl_env.reacher.sensors:scene_camera:80x60",
                                          "new_sensor_example:wrist_range"]
    assert not segments_of({proc.pid}), "shared memory left behind"
