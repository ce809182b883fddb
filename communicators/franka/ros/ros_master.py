"""A ROS 1 master on loopback for tests, benchmarks and the sim bridge, plus a reachability check.

`rosmaster --core -p PORT` is all a ROS 1 graph needs (no roscore, no launch files). Its logs go to
a temporary ROS_HOME, removed on stop, so nothing outlives the program.

Example:
    >>> with LocalRosMaster() as master:                             # doctest: +SKIP
    ...     master_is_up(master.uri)
    True
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xmlrpc.client

from communicators.errors import RTRLError


class RosMasterError(RTRLError):
    """The ROS master could not be started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def master_is_up(uri: str, timeout: float = 0.5) -> bool:
    """True if a ROS master answers getPid at `uri` (e.g. "http://127.0.0.1:11311") within timeout s."""

    class _Transport(xmlrpc.client.Transport):
        def make_connection(self, host):  # noqa: ANN001 - xmlrpc's signature
            conn = super().make_connection(host)
            conn.timeout = timeout
            return conn

    try:
        code, _, _ = xmlrpc.client.ServerProxy(uri, transport=_Transport()).getPid("/rtrl_probe")
        return code == 1
    except (OSError, xmlrpc.client.Error):
        return False


def ros_environment(master_uri: str, ros_ip: str | None = "127.0.0.1",
                    ros_home: str | None = None) -> dict[str, str]:
    """Environment variables for a ROS process talking to `master_uri` (a copy of os.environ)."""
    env = dict(os.environ)
    env["ROS_MASTER_URI"] = master_uri
    if ros_ip:
        env["ROS_IP"] = ros_ip
        env.pop("ROS_HOSTNAME", None)  # ROS_HOSTNAME would take precedence over ROS_IP
    if ros_home:
        env["ROS_HOME"] = ros_home
        env["ROS_LOG_DIR"] = os.path.join(ros_home, "log")
    return env


class LocalRosMaster:
    """`rosmaster --core` on 127.0.0.1 on a free port, as a context manager.

    Args:
        port: TCP port; None picks a free one.
        start_timeout: seconds to wait for the master to answer before raising RosMasterError.

    Attributes:
        uri: "http://127.0.0.1:PORT". ros_home: its temporary ROS_HOME (logs).
    """

    def __init__(self, port: int | None = None, start_timeout: float = 10.0) -> None:
        if shutil.which("rosmaster") is None:
            raise RosMasterError(
                "rosmaster is not on PATH; run scripts/install_ros.sh (Debian python3-rosmaster)"
            )
        self.port = free_port() if port is None else int(port)
        self.uri = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.ros_home: str | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> "LocalRosMaster":
        """Start the master and wait until it answers."""
        self.ros_home = tempfile.mkdtemp(prefix="rtrl_ros_home_")
        env = ros_environment(self.uri, ros_home=self.ros_home)
        self._proc = subprocess.Popen(
            ["rosmaster", "--core", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while not master_is_up(self.uri):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace")[-2000:]
                self.stop()
                raise RosMasterError(f"rosmaster on port {self.port} exited at start: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise RosMasterError(
                    f"rosmaster on port {self.port} did not answer within {self.start_timeout} s"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the master (SIGINT, then SIGKILL after 5 s) and remove its ROS_HOME. Idempotent."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5.0)
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
        if self.ros_home is not None:
            shutil.rmtree(self.ros_home, ignore_errors=True)
            self.ros_home = None

    def kill(self) -> None:
        """SIGKILL the master at once, as a crash would (fault tests); `stop` still cleans up after."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5.0)

    def __enter__(self) -> "LocalRosMaster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
