"""examples/benchmark_sim_cpu.py steps the full sim env and reports the CPU of each of its processes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_writes_the_cpu_of_every_sim_process_and_the_rates_it_saw(tmp_path):
    out = tmp_path / "cpu.json"
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "benchmark_sim_cpu.py"), "--seconds", "3",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=200)
    assert run.returncode == 0, run.stderr
    assert "| robot |" in run.stdout and f"wrote {out}" in run.stdout
    result = json.loads(out.read_text())["runs"][0]
    cpu = result["cpu_per_s"]
    for process in ("env (this process)", "robot", "target", "camera", "polling loop"):
        assert 0 < cpu[process] < 2.5, process  # 2 cores at most; every process does some work
    assert result["cpu_per_s_total"] == pytest.approx(sum(cpu.values()))
    assert result["steps"] > 10 and result["camera_frames_per_s"] > 5 and result["arm_states_per_s"] > 100
    assert len(result["loadavg_before"]) == 3


def test_benchmark_rejects_a_too_short_run():
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "benchmark_sim_cpu.py"), "--seconds", "0.5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--seconds 0.5: give more than 1 s" in run.stderr
