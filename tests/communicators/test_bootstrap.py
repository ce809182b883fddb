"""A script without ``if __name__ == "__main__":`` is told so, from the child's bootstrap error.

Real script files run as their own programs: under spawn and forkserver each communicator's child
re-imports the script, which then tries to start processes again; the parent must say so in the
issue's words, not "exited with code 1 without reporting an error".
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from communicators.bootstrap import GUARD_FIX
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

BODY = """
from rtrl_env.errors import EnvError
from tests.support.toy_envs import flat_toy_env
env = flat_toy_env(run_mode="singlethread", start_method={method!r})
try:
    env.reset()
    print("RESET OK", flush=True)
except EnvError as err:
    print("ENVERROR", err, flush=True)
finally:
    env.close()
"""


def _run(path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(path)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=90)


@pytest.mark.parametrize("method", ["forkserver", "spawn", None], ids=["forkserver", "spawn", "default"])
def test_a_script_without_the_main_guard_is_told_to_add_it(tmp_path, method):
    script = tmp_path / "train_without_guard.py"
    script.write_text(BODY.format(method=method))
    result = _run(script)
    assert "ENVERROR" in result.stdout, result.stdout + result.stderr
    message = result.stdout.split("ENVERROR", 1)[1]
    assert f"its process re-imported {script} and that import started processes again; {GUARD_FIX}" in message
    assert GUARD_FIX == ('create the env under `if __name__ == "__main__":` (communicators start with '
                         "spawn/forkserver, which re-import your script)")
    assert "bootstrapping phase" in message, "the child's own traceback is not carried"
    assert "without reporting an error" not in message


def test_the_same_script_under_the_main_guard_runs(tmp_path):
    script = tmp_path / "train_with_guard.py"
    body = textwrap.indent(BODY.format(method=None), "    ")
    script.write_text(f'def main():\n{body}\n\nif __name__ == "__main__":\n    main()\n')
    result = _run(script)
    assert "RESET OK" in result.stdout, result.stdout + result.stderr
