"""examples/benchmark_sensor_learning.py on a tiny budget, end to end: both training runs on the
blanked-image reacher (one with the target sensor, one without), the expert and random references,
each run's final agent evaluated on the references' seeded targets, the JSON of both curves and
the PNG."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.timeout(400)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_sensor_learning_benchmark_writes_both_runs_curves_references_and_a_plot(tmp_path):
    out = tmp_path / "bench"
    # Two 1 s episodes per run (25 random steps, then 25 learning ones); the time limit only bounds
    # a run on a loaded machine.
    proc = subprocess.run(
        [sys.executable, "examples/benchmark_sensor_learning.py", "--minutes", "2", "--reference_episodes", "1",
         "--episode_length", "1.0", "--out", str(out), "--init_step", "25", "--env_step", "25",
         "--replay_buffer_capacity", "2000", "--batch_size", "16", "--image_width", "40", "--image_height", "30"],
        cwd=ROOT, env={**os.environ, "MUJOCO_GL": "egl"}, capture_output=True, text=True, timeout=380)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"wrote {out / 'sensor_learning.json'}" in proc.stdout
    result = json.loads((out / "sensor_learning.json").read_text())
    expert, random_mean = result["expert_return_mean"], result["random_return_mean"]
    assert (result["image_width"], result["image_height"]) == (40, 30)  # the references' too
    assert result["reference"]["expert"]["episodes"] == result["reference"]["random"]["episodes"] == 1
    assert 0.0 <= random_mean <= 4.0 and 0.0 < expert <= 4.0  # 1 s episodes pay at most 4 * 1 s
    assert result["reference"]["expert"]["final_axis_distance_mean_m"] < 0.02  # the expert still finds the target

    runs = result["runs"]
    assert runs["with_sensor"]["observation_keys"] == ["image", "proprioception", "target_position"]
    assert runs["without_sensor"]["observation_keys"] == ["image", "proprioception"]
    for name, run in runs.items():
        with open(os.path.join(run["run_dir"], "args.json")) as f:
            args = json.load(f)
        assert args["blank_image"] is True and args["time_limit"] == 120.0, name
        assert (args["image_width"], args["image_height"]) == (40, 30), name
        assert args["sensor"] == (["rtrl_env.reacher.sensors:target_position"] if name == "with_sensor" else [])
        assert "--blank_image" in run["command"] and ("--sensor" in run["command"]) == (name == "with_sensor")
        curve = run["curve"]
        assert curve["episode"] == [1, 2] and curve["env_step"] == [25, 50], (name, curve)
        assert 0 < curve["wall_time_s"][0] < curve["wall_time_s"][1] < 120
        assert run["episodes"] == 2 and run["env_steps"] == 50 and run["num_updates"] > 0  # it learned
        final = run["final_return_mean_last_20"]
        assert final == pytest.approx(np.mean(curve["return"]))
        assert run["fraction_of_expert"] == pytest.approx(final / expert)
        assert run["normalised_score"] == pytest.approx((final - random_mean) / (expert - random_mean))
        assert run["minutes_to_80_percent_of_expert"] is None  # fewer than 20 episodes: no 20-episode mean
        assert os.path.exists(os.path.join(os.path.dirname(os.path.dirname(run["run_dir"])), "console.log"))
        # The final agent, evaluated on the references' seeded targets by the training command's --eval.
        evaluation = run["evaluation"]
        assert "--eval" in evaluation["command"] and "--target_seed 9" in evaluation["command"], name
        assert ("--sensor" in evaluation["command"]) == (name == "with_sensor")
        with open(os.path.join(evaluation["eval_dir"], "args.json")) as f:
            eval_args = json.load(f)
        assert eval_args["eval"] is True and eval_args["target_seed"] == eval_args["seed"] == 9, name
        assert eval_args["load_model"].startswith(os.path.join(run["run_dir"], "model")), name
        assert len(evaluation["returns"]) == 1 and 0.0 <= evaluation["returns"][0] <= 4.0, name
        assert evaluation["return_mean"] == pytest.approx(evaluation["returns"][0])
        assert evaluation["fraction_of_expert"] == pytest.approx(evaluation["return_mean"] / expert)
    criteria = result["criteria"]
    assert criteria["with_sensor_reaches_80_percent_of_expert"] == (
        runs["with_sensor"]["evaluation"]["return_mean"] >= 0.8 * expert)
    assert criteria["without_sensor_at_random_level"] == (
        runs["without_sensor"]["evaluation"]["return_mean"] < random_mean + 0.2 * (expert - random_mean))
    image = cv2.imread(str(out / "sensor_learning.png"))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
