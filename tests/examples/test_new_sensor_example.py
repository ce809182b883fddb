"""examples/new_sensor_example.py runs end to end and its sensors' data reach the observation."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_new_sensor_example_adds_a_camera_and_a_custom_sensor_to_the_observation():
    proc = subprocess.run(
        [sys.executable, "examples/new_sensor_example.py", "--steps", "20"], cwd=ROOT,
        env={**os.environ, "MUJOCO_GL": "egl"}, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["observation_keys"] == ["image", "proprioception", "scene_image", "wrist_range"]
    assert summary["scene_image_shape"] == [3, 60, 80]
    assert 20 < summary["scene_image_mean"] < 235  # a rendered scene, not a blank frame
    # The wrist camera starts about 0.42 m above the monitor; the range finder must see that.
    ranges = summary["wrist_range_m"]
    assert 0.3 < ranges["first"] < 0.5 and 0.1 < ranges["min"] <= ranges["max"] < 0.8
