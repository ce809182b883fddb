"""README.md's "Plugging in a new sensor" runs as written: every code block, in order, in a fresh directory.

A ``python`` block whose first line is ``# NAME.py`` is saved as NAME.py; each line of a ``bash``
block is run with the shell (``python`` is this interpreter, ``examples/`` is the repository's); a
``text`` block must appear, line by line, in the output of the commands before it. Training
commands run as written with a budget of 100 steps appended in place of their 60 s time limit (the
last value of a flag wins): four 1 s episodes, the last ones learning, however loaded the machine.
A USB camera (``opencv_camera:0``) cannot be tested here: there is no /dev/video*; the doc names it
in its prose, and its commands use the video file. Real processes, a real sim and a real video file
throughout; the only stand-in is the doc's own: its force/torque sensor makes its readings up.
"""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(400)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "README.md")
SECTION = "## Plugging in a new sensor"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
SHORTER = " --time_limit 0 --init_step 25 --env_step 75 --episode_length 1.0"


def section() -> str:
    """The README's section, up to the next top-level heading."""
    with open(DOC) as f:
        text = f.read()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:end if end >= 0 else None]


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(section())


def test_the_doc_has_the_parts_a_new_user_needs():
    text = section()
    kinds = [kind for kind, _ in blocks()]
    assert kinds.count("python") == 3 and kinds.count("bash") == 3, kinds
    for needed in ("open_device", "read_sensor", "close_device", "ExtraSensor", "extra_sensors=",
                   'if __name__ == "__main__":', "time.monotonic()", "window_len", "observe(data, timestamps)",
                   "import rtrl_env", "--sensor", "opencv_camera:0", "clip.avi"):
        assert needed in text, needed


def test_every_code_block_of_the_doc_runs_as_written(tmp_path):
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    env = {**os.environ, "MUJOCO_GL": "egl", "PYTHONUNBUFFERED": "1", "PYTHONPATH": ROOT,
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    output, commands = "", []
    for kind, body in blocks():
        if kind == "python":
            name = body.splitlines()[0].removeprefix("# ").strip()
            assert re.fullmatch(r"\w+\.py", name), f"a python block must start with '# NAME.py', not {name!r}"
            (tmp_path / name).write_text(body)
        elif kind == "bash":
            output = ""
            for line in filter(None, body.splitlines()):
                command = line + (SHORTER if "examples/franka_reacher.py" in line else "")
                commands.append(command)
                proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                      timeout=200)
                assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                output += proc.stdout
        elif kind == "text":
            shown = output.splitlines()
            for expected in body.splitlines():
                assert expected in shown, f"the doc shows {expected!r}; the commands printed:\n{output[-3000:]}"
    assert len(commands) == 4, commands

    # What the doc says of the training runs: every key the agent consumed is in summary.json.
    for work_dir, keys in (("wrench", ["image", "proprioception", "wrench"]),
                           ("wrench_camera", ["camera2", "image", "proprioception", "wrench"])):
        serial = work_dir == "wrench"  # updates after every step; the async learner's count depends on the load
        (summary,) = glob.glob(str(tmp_path / "runs" / work_dir / "results" / "*" / "summary.json"))
        with open(summary) as f:
            result = json.load(f)
        assert result["observation_keys"] == keys and result["env_steps"] == 100, (work_dir, result)
        assert "wrench" in result["stream_age_ms"]  # it streamed (camera2 states no rate: its age is not kept)
        assert result["num_updates"] > 0 or not serial
