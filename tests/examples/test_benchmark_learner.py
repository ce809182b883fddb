"""examples/benchmark_learner.py keeps writing the figures the issue reads, per scheduling policy."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "examples" / "benchmark_learner.py")


def test_benchmark_compares_schedulers_and_writes_updates_timing_and_the_serial_ceiling(tmp_path):
    out = tmp_path / "learner.json"
    run = subprocess.run([sys.executable, SCRIPT, "--duration", "3", "--configs", "cpu", "--pipelines", "shared,none",
                          "--schedulers", "idle,other", "--learner_threads", "1", "--serial_seconds", "1",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    runs = result["runs"]
    assert [(r["pipeline"], r["learner_scheduler"]) for r in runs] == [("shared", "idle"), ("shared", "other"),
                                                                        ("none", "-")]
    assert runs[0]["updates_per_s"] > 0 and runs[0]["period_p99_ms"] > 0
    assert runs[2]["updates_per_s"] == 0  # the actor alone: its timing baseline
    assert set(result["serial_updates_per_s"]) == {"cpu/1", "cpu/2"}
    assert all(v > 0 for v in result["serial_updates_per_s"].values())


def test_an_unknown_scheduler_is_refused_by_its_flag():
    run = subprocess.run([sys.executable, SCRIPT, "--schedulers", "idle,fifo"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "--schedulers idle,fifo: fifo is none of other,batch,idle" in run.stderr
