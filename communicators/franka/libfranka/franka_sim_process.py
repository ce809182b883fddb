"""Runs `franka-sim`, a MuJoCo FR3 that speaks the Franka network protocol, as a local server.

With it, the libfranka backend (and any libfranka >= 0.18 client) runs without a robot: tests,
benchmarks and dry runs connect to `host` exactly as they would to a real FR3's control box.
franka-sim needs its own virtual environment (it pins numpy 1.26 and mujoco < 3.3) and an offline
FR3 model; `scripts/install_franka_sim.sh` installs both. The server is started from that venv's
Python in its own process group, listens on a loopback address only (franka-sim's command-line
tool binds every interface, so we call its Python API instead), and exits when its parent dies.

libfranka always connects to TCP port 1337, so two servers cannot share an address; every address
in 127.0.0.0/8 is loopback on Linux, and `free_loopback_host()` picks one nobody listens on.

Example (needs the franka-sim venv):
    >>> with FrankaSimProcess(FrankaSimProcessConfig(host=free_loopback_host())) as sim:  # doctest: +SKIP
    ...     robot = pylibfranka.Robot(sim.host, pylibfranka.RealtimeConfig.kIgnore)
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from communicators.errors import DeviceError

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMAND_PORT = 1337
"""TCP port of the Franka control interface; libfranka has no option to change it."""

# Runs inside the franka-sim venv. Watching getppid() makes the server exit when the process
# that started it dies, so a killed test run leaves no server behind.
_SERVER_CODE = """
import logging, os, sys, threading, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from franka_sim import FrankaSimServer
parent = os.getppid()
def watch_parent():
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(3)
threading.Thread(target=watch_parent, daemon=True).start()
server = FrankaSimServer(host=sys.argv[1], enable_gripper=False,
                         enforce_comm_constraints=sys.argv[2] == "1",
                         enforce_motion_limits=sys.argv[3] == "1")
try:
    server.start()
except KeyboardInterrupt:
    pass
finally:
    server.stop()
"""
_READY_LINE = "Server ready for new client connection"
_MODEL_MARKER = "patched by scripts/install_franka_sim.sh v2"  # see that script for the patches


def default_venv() -> Path:
    """The franka-sim venv: $FRANKA_SIM_VENV, else .venv-franka-sim at the repository root."""
    return Path(os.environ.get("FRANKA_SIM_VENV", REPO_ROOT / ".venv-franka-sim"))


def missing_install(venv: Path | None = None) -> str | None:
    """Why franka-sim cannot run here, or None when its venv and offline FR3 model are installed."""
    venv = default_venv() if venv is None else Path(venv)
    if not (venv / "bin" / "python").exists():
        return f"no franka-sim venv at {venv}; run scripts/install_franka_sim.sh"
    model = venv / "share" / "fr3_mjcf" / "fr3.xml"
    if not model.exists() or _MODEL_MARKER not in model.read_text(errors="replace")[:200]:
        return f"no (or an outdated) offline FR3 model at {model}; run scripts/install_franka_sim.sh"
    return None


def free_loopback_host(attempts: int = 50) -> str:
    """A loopback address (127.x.y.z) on which nothing listens on the Franka command port."""
    for _ in range(attempts):
        host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, COMMAND_PORT))
            except OSError:
                continue
            return host
    raise DeviceError(f"found no loopback address with TCP port {COMMAND_PORT} free in {attempts} tries")


@dataclass
class FrankaSimProcessConfig:
    """Where and how to run franka-sim.

    Attributes:
        host: loopback address to listen on (the robot IP clients connect to).
        enforce_comm_constraints: abort a motion after 20 lost command cycles, as the real robot.
        enforce_motion_limits: abort a motion whose commands break the FR3's velocity,
            acceleration or jerk limits with a reflex, as the real robot.
        venv: the franka-sim virtual environment (see `default_venv`).
        start_timeout: s to wait for the server to accept clients.
        log_path: file for the server's log; a temporary file if None.
    """

    host: str = "127.0.0.1"
    enforce_comm_constraints: bool = True
    enforce_motion_limits: bool = True
    venv: Path = field(default_factory=default_venv)
    start_timeout: float = 60.0
    log_path: Path | None = None

    def __post_init__(self) -> None:
        self.venv = Path(self.venv)
        if not self.host.startswith("127."):
            raise ValueError(
                f"FrankaSimProcessConfig.host={self.host!r} is not a loopback address; the "
                "simulator is only ever served on 127.0.0.0/8"
            )
        if not self.start_timeout > 0:
            raise ValueError(f"FrankaSimProcessConfig.start_timeout={self.start_timeout} s must be positive")


class FrankaSimProcess:
    """franka-sim running as a child process; a context manager.

    Args:
        config: address, reflex enforcement and venv.
    """

    def __init__(self, config: FrankaSimProcessConfig | None = None) -> None:
        self.config = config if config is not None else FrankaSimProcessConfig()
        self._process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._temporary_log = False

    @property
    def host(self) -> str:
        """The address clients connect to."""
        return self.config.host

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None when not running."""
        return None if self._process is None else self._process.pid

    def start(self) -> "FrankaSimProcess":
        """Start the server and wait until it accepts a client.

        Raises:
            DeviceError: franka-sim is not installed, or it exited or did not become ready in time
                (the message carries the end of its log).
        """
        cfg = self.config
        problem = missing_install(cfg.venv)
        if problem:
            raise DeviceError(f"franka-sim cannot start: {problem}")
        if cfg.log_path is None:
            handle, name = tempfile.mkstemp(prefix="franka_sim_", suffix=".log")
            os.close(handle)
            self.log_path, self._temporary_log = Path(name), True
        else:
            self.log_path = Path(cfg.log_path)
        env = dict(os.environ, FR3_MJCF=str(cfg.venv / "share" / "fr3_mjcf" / "fr3.xml"))
        # The main venv's variables must not leak into franka-sim's interpreter (numpy 1.26 there).
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [str(cfg.venv / "bin" / "python"), "-c", _SERVER_CODE, cfg.host,
                 str(int(cfg.enforce_comm_constraints)), str(int(cfg.enforce_motion_limits))],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # its own process group: Ctrl-C in a terminal goes to us only
            )
        deadline = time.monotonic() + cfg.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise DeviceError(f"franka-sim on {cfg.host} exited with code {code} while starting:\n{self.log_tail()}")
            if _READY_LINE in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        self.stop()
        raise DeviceError(
            f"franka-sim on {cfg.host} was not ready within {cfg.start_timeout} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGINT, then SIGKILL after `timeout` s) and its process group. Idempotent.

        A temporary log file is removed; a configured `log_path` is kept.
        """
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGINT)  # franka-sim shuts down cleanly on Ctrl-C
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5.0)
            except ProcessLookupError:
                process.wait(5.0)
        if self._temporary_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self._temporary_log = False

    def __enter__(self) -> "FrankaSimProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
