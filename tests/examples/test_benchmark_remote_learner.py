"""examples/benchmark_remote_learner.py runs end to end on a tiny budget: its own Ray cluster, a
training run on the sim reacher with the learner on the second node, the learner killed once and
restarted, and every figure of its contract in the JSON it writes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("cycle_p99_ms", "staleness_p50_ms", "staleness_p99_ms", "updates_per_s", "transitions_sent",
        "transitions_lost", "learner_restart_s")


def test_the_remote_learner_benchmark_kills_the_ray_learner_and_reports_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "examples.benchmark_remote_learner", "--duration", "45",
                          "--init_step", "50", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=560)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"wrote {out}" in run.stdout
    figures = json.loads(out.read_text())
    assert all(figures[key] is not None for key in KEYS), figures
    assert figures["learner_restarts"] == 1 and figures["learner_restart_s"] > 0
    assert figures["transitions_lost"] == 0 and figures["transitions_sent"] == figures["transitions_stored"] > 100
    assert figures["updates_per_s"] > 0 and figures["cycle_p99_ms"] >= figures["dt_ms"] * 0.9
    # The two "machines" share no core: the learner's process may not run where the robot side runs.
    assert figures["learner_process_cores"] and figures["run_process_cores"]
    assert set(figures["learner_process_cores"]).isdisjoint(figures["run_process_cores"]), figures


def test_the_remote_learner_benchmark_refuses_a_run_too_short_to_kill_the_learner_mid_run():
    run = subprocess.run([sys.executable, "-m", "examples.benchmark_remote_learner", "--duration", "5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--duration=5: give at least 15 s" in run.stderr
