"""Every example starts as README runs it, ``python examples/NAME.py``, from any directory: the
script's own folder is then on sys.path, not the repository (two benchmarks failed with
"No module named 'examples'" that way while their tests, which import them, passed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_example_starts_as_a_script_from_another_directory(script, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=100)
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]
