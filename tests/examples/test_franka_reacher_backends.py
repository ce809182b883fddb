"""The training script's real-robot flags fail early with a message naming what is missing."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "franka_reacher.py"


@pytest.mark.timeout(120)
def test_libfranka_backend_without_robot_ip_says_which_flag_to_pass(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--backend", "libfranka", "--work_dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=100)
    assert run.returncode != 0
    assert "--backend libfranka needs --robot_ip" in run.stderr + run.stdout
    assert not (tmp_path / "results").exists(), "a run that cannot start must not leave a results directory"
