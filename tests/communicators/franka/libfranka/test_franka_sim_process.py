"""franka-sim as a child process: loopback only, clear errors, nothing left behind."""
import re
import socket

import pytest

from communicators.errors import DeviceError
from communicators.franka.libfranka.franka_sim_process import (
    COMMAND_PORT,
    FrankaSimProcess,
    FrankaSimProcessConfig,
    free_loopback_host,
)

pytestmark = pytest.mark.timeout(60)


def test_a_non_loopback_host_is_refused():
    with pytest.raises(ValueError, match=re.escape("host='0.0.0.0' is not a loopback address")):
        FrankaSimProcessConfig(host="0.0.0.0")


def test_a_missing_venv_names_the_install_script(tmp_path):
    sim = FrankaSimProcess(FrankaSimProcessConfig(venv=tmp_path / "nowhere"))
    with pytest.raises(DeviceError, match=re.escape("run scripts/install_franka_sim.sh")):
        sim.start()


def test_free_loopback_host_gives_a_loopback_address_with_the_port_free():
    host = free_loopback_host()
    assert host.startswith("127.")
    with socket.socket() as probe:
        probe.bind((host, COMMAND_PORT))


def test_the_server_listens_on_its_loopback_address_only(franka_sim):
    with socket.create_connection((franka_sim.host, COMMAND_PORT), timeout=5):
        pass
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1" if franka_sim.host != "127.0.0.1" else "127.0.0.2",
                                  COMMAND_PORT), timeout=1).close()
