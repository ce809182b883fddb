"""examples/evaluate_expert.py and examples/record_episodes.py on a tiny budget, end to end."""
import json
import os
import subprocess
import sys

import cv2
import imageio.v2 as imageio
import pytest

pytestmark = pytest.mark.timeout(240)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MUJOCO_GL": "egl"}, timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_evaluate_expert_writes_returns_of_both_policies(tmp_path):
    out = tmp_path / "eval.json"
    stdout = _run("examples/evaluate_expert.py", "--env", "FrankaVisualReacher2-v0",
                  "--episodes", "1", "--episode-length", "2.0", "--out", str(out))
    assert "FrankaVisualReacher2-v0" in stdout and f"wrote {out}" in stdout
    result = json.loads(out.read_text())["envs"]["FrankaVisualReacher2-v0"]
    for policy in ("expert", "random"):
        assert result[policy]["episodes"] == 1
        assert 0.0 <= result[policy]["return_mean"] <= 4.0 * 2.0
    assert result["expert"]["final_axis_distance_mean_m"] < 0.02


def test_record_episodes_writes_a_contact_sheet_and_a_gif(tmp_path):
    stdout = _run("examples/record_episodes.py", "--env", "FrankaVisualReacher2-v0",
                  "--episode-length", "0.8", "--every", "5", "--out", str(tmp_path))
    summary = json.loads(stdout[stdout.index("{"):])
    sheet = cv2.imread(summary["contact_sheet"])
    # Two rows (expert, random) of 2x-scaled 160x120 tiles with 2 px borders; 21 frames -> 5 tiles.
    assert sheet.shape == (2 * (240 + 4), 5 * (320 + 4), 3)
    gif = imageio.mimread(summary["gif"])
    assert len(gif) == 11 and gif[0].shape[:2] == (120, 320)  # every 2nd step, camera size
    assert summary["expert"]["steps"] == summary["random"]["steps"] == 20
