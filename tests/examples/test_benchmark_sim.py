"""examples/benchmark_sim.py runs end to end on a tiny budget and reports its figures."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_and_writes_real_time_factor_and_render_rates(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "benchmark_sim.py"), "--seconds", "2",
         "--frames", "20", "--camera-fps", "20", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert run.returncode == 0, run.stderr
    assert "real_time_factor" in run.stdout and f"wrote {out}" in run.stdout
    results = json.loads(out.read_text())
    assert 0.5 < results["real_time_factor"] < 1.5  # sanity only; the figure is the benchmark's
    assert results["sim_seconds"] > 1.0
    for key in ("render_fps_wrist", "render_fps_scene", "camera_communicator_max_fps_wrist",
                "camera_communicator_max_fps_scene", "camera_fps_achieved", "state_publish_rate_hz"):
        assert results[key] > 0, key


def test_benchmark_rejects_a_too_short_run():
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "benchmark_sim.py"), "--seconds", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 2 and "--seconds=0.5: give more than 1 s" in run.stderr
