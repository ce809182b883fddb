"""--learner ray on the command line: a bad Ray address (or a head that does not answer) is one line
naming the flag, exit code 2, before anything is made and before any device or process starts."""
from __future__ import annotations

import os

import pytest

from sac.training import cli
from tests.support.processes import child_pids

pytestmark = pytest.mark.timeout(120)

RAY = ["--async_mode", "--learner", "ray"]
HEAD = ["--ray_address", "127.0.0.2:6379"]
BAD = [
    (RAY, "--ray_address: must be given with --learner ray: the Ray head's HOST:PORT, e.g. --ray_address "
          "192.168.1.10:6379"),
    ([*RAY, "--ray_address", "10.0.0.1"], "--ray_address 10.0.0.1: must be HOST:PORT of the Ray head (what `ray "
                                          "start --head` prints), e.g. --ray_address 192.168.1.10:6379"),
    ([*RAY, "--ray_address", "10.0.0.1:99999"], "--ray_address 10.0.0.1:99999: has port 99999; a port is in "
                                                "1..65535 (Ray's head uses 6379 by default)"),
    ([*RAY, "--ray_address", "ray://10.0.0.1:10001"], "--ray_address ray://10.0.0.1:10001: must be HOST:PORT of the "
                                                      "Ray head (what `ray start --head` prints), without a scheme"),
    # Nothing listens there (the test session's network namespace has no Ray head).
    ([*RAY, "--ray_address", "127.0.0.2:6399"], "--ray_address 127.0.0.2:6399: no Ray head answers there "
                                                "(Connection refused); start one with `ray start --head "
                                                "--node-ip-address=<its address> --port=6399`"),
    (["--learner", "ray", *HEAD], "--learner ray: learns asynchronously on the Ray cluster: add --async_mode"),
    (HEAD, "--ray_address 127.0.0.2:6379: is only used with --learner ray"),
    ([*RAY, *HEAD, "--ray_learner", "my lab"], "--ray_learner my lab: must be letters, digits and . _ - = *"),
    ([*RAY, *HEAD, "--ray_node_ip", "robot"], "--ray_node_ip robot: must be an IP address"),
    ([*RAY, *HEAD, "--learner_warn_s", "40"], "--learner_timeout_s 30.0: must be longer than --learner_warn_s "
                                              "(40 s)\n"),
    (["--learner", "cloud"], "--learner cloud: must be one of local, ray"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_ray_setting_is_one_line_naming_the_flag_before_anything_starts(argv, message, tmp_path, capsys):
    before = child_pids()
    assert cli.main([*argv, "--work_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err
    assert os.listdir(tmp_path) == [], "a run that cannot start must not create anything"
    assert child_pids() <= before, "no process (device, bridge) may start"
