"""examples/benchmark_ros.py runs end to end on a tiny budget and reports what it measured."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rospy", reason="rospy is not importable; run scripts/install_ros.sh")


@pytest.mark.timeout(180)
def test_benchmark_prints_and_writes_state_rate_and_command_latency(tmp_path):
    out = tmp_path / "ros.json"
    proc = subprocess.run(
        [sys.executable, "examples/benchmark_ros.py", "--seconds", "1", "--trials", "3",
         "--rate-hz", "500", "--env-steps", "25", "--out", str(out)],
        capture_output=True, text=True, timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "state rate" in proc.stdout and "command latency" in proc.stdout
    result = json.loads(out.read_text())
    assert result["state"]["rate_hz"] > 0.5 * 500
    assert result["command"]["state_shows_command_ms"]["n"] == 3
    assert 0 < result["command"]["state_shows_command_ms"]["max"] < 1000
    assert "env cycle" in proc.stdout
    assert result["env_cycle"]["steps"] >= 20 and result["env_cycle"]["dt_ms"] == 40.0
