"""A two-node Ray cluster on this machine's loopback, for tests, benchmarks and trying the remote
learner without a second machine.

The head node (``127.0.0.2``) stands for the robot's computer: the bridge's driver connects to it.
The second node (``127.0.0.3``) stands for the learning machine: it offers the
:data:`~sac.remote.config.LEARNER_RESOURCE` the learner actor asks for. Ray rewrites 127.0.0.1 to
the routable address, so the nodes use other loopback addresses (all of 127.0.0.0/8 answers on
``lo``).

Network hygiene (docs/remote-learner.md): a Ray head probes cloud metadata addresses and may post
a usage report when it starts. Call this only inside a loopback-only network namespace
(examples/loopback_namespace.py; the test session and the benchmark enter one first); the cluster
also gets a fresh HOME holding ``ray_bootstrap_config.yaml`` with ``provider: {type: local}``
(which stops the metadata probe, and keeps a stale ``~/.ray/auth_token`` out), usage stats off
and the report URL pointed at a closed loopback port. :func:`hygiene_env` gives those variables
for the processes that talk to the cluster (the training run, whose bridge is the driver).

Each node is one ``ray start --block`` in a session of its own, so every process of a node
(GCS, raylet, agents, workers) is found by its session id and nothing is left when it stops,
however the test ends. ``ray stop`` is never used: it kills every Ray process of the machine,
other users' clusters included.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from communicators.shared_memory import SEGMENT_PREFIX
from sac.remote.config import LEARNER_RESOURCE

HEAD_IP, LEARNER_IP = "127.0.0.2", "127.0.0.3"
HEAD_PORT = 6379
OBJECT_STORE_BYTES = 256 * 2**20  # per node; Ray's default (30 % of RAM) is far more than a run needs
BOOTSTRAP_CONFIG = "provider:\n  type: local\n"
ATTEMPTS = 3
STOP_GRACE_S = 3.0
REPO_ROOT = str(Path(__file__).resolve().parents[2])


def hygiene_env(home: str) -> dict[str, str]:
    """The environment variables every process talking to a test cluster runs with."""
    return {"HOME": home, "RAY_USAGE_STATS_ENABLED": "0", "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
            "RAY_USAGE_STATS_PROMPT_ENABLED": "0"}


def pinned_to(cores: set[int] | None):
    """A ``preexec_fn`` for :class:`subprocess.Popen` that keeps the child and all it starts on
    ``cores`` (None when ``cores`` is None: no restriction)."""
    return None if cores is None else lambda: os.sched_setaffinity(0, cores)


def make_home(directory: str) -> str:
    """Creates a fresh HOME with the local-provider bootstrap config; returns its path."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "ray_bootstrap_config.yaml"), "w") as f:
        f.write(BOOTSTRAP_CONFIG)
    return directory


class LocalNode:
    """One ``ray start --block`` node and every process it starts (test and benchmark process).

    Args:
        args: arguments of ``ray start`` after ``--block``.
        env: its environment.
        log: file its output goes to.
        cores: the CPU cores its processes may run on (None: any).
    """

    def __init__(self, args: list[str], env: dict[str, str], log: str, cores: set[int] | None = None) -> None:
        self.args, self.env, self.log_path = args, env, log
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        with open(log, "wb") as out:  # a fresh log per start: "Ray runtime started" marks this one up
            self.proc = subprocess.Popen([ray, "start", "--block", *args], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=pinned_to(cores))

    @property
    def sid(self) -> int:
        """The node's session id (the pid of its ``ray start``)."""
        return self.proc.pid

    def pids(self) -> list[int]:
        """Live processes of the node (its session)."""
        return session_members(self.sid)

    def pid_of(self, name: str) -> int | None:
        """The pid of the node's process whose command line contains ``name`` (e.g. "raylet")."""
        for pid in self.pids():
            if name in _cmdline(pid):
                return pid
        return None

    def stop(self, timeout: float = 20.0) -> None:
        """Stops every process of the node: SIGTERM, then SIGKILL what is left after ``timeout``."""
        _signal_session(self.sid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            self.proc.poll()
            time.sleep(0.1)
        while self.pids():
            _signal_session(self.sid, signal.SIGKILL)
            self.proc.poll()
            time.sleep(0.1)
        self.proc.wait(10)


class LocalCluster:
    """A head node and a learner node on loopback (see the module docstring). A context manager.

    Args:
        root: a directory for the cluster's HOME, temp dir and logs (removed on :meth:`stop` if
            this object made it).
        learner_cpus: CPUs the learner node offers.
        learner_resource: how many learners the learner node may host.
        pythonpath: put on the nodes' ``PYTHONPATH`` so their workers import this repository.
        head_cores / learner_cores: the CPU cores each node's processes may run on (None: any),
            so that one box can stand for two machines that do not share cores.
    """

    def __init__(self, root: str | None = None, learner_cpus: int = 1, learner_resource: float = 1.0,
                 pythonpath: str = REPO_ROOT, head_cores: set[int] | None = None,
                 learner_cores: set[int] | None = None) -> None:
        self._own_root = root is None
        # Short: Ray's AF_UNIX socket paths live under the temp dir and must stay below 108 bytes.
        self.root = root or tempfile.mkdtemp(prefix="rtrl_ray_", dir="/tmp")
        self.home = make_home(os.path.join(self.root, "home"))
        self.temp_dir = os.path.join(self.root, "t")
        env = dict(os.environ, **hygiene_env(self.home))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH")) if p)
        self.env = env
        self.learner_cpus, self.learner_resource = learner_cpus, learner_resource
        self.head_cores, self.learner_cores = head_cores, learner_cores
        self.head: LocalNode | None = None
        self.learner: LocalNode | None = None

    @property
    def address(self) -> str:
        """The head's GCS address, as ``--ray_address`` takes it."""
        return f"{HEAD_IP}:{HEAD_PORT}"

    def start(self, timeout: float = 180.0, attempts: int = ATTEMPTS) -> LocalCluster:
        """Starts both nodes and waits until both are registered (seconds each on a quiet machine).

        A node that Ray gives up on while starting (its raylet must register within 30 s, which a
        heavily loaded machine can miss) is started again, up to ``attempts`` times.

        Raises:
            RuntimeError: a node did not come up; the message has its log's tail.
        """
        common = ["--disable-usage-stats", "--include-dashboard=false", f"--temp-dir={self.temp_dir}",
                  f"--object-store-memory={OBJECT_STORE_BYTES}"]
        for attempt in range(attempts):
            self.head = LocalNode(["--head", f"--node-ip-address={HEAD_IP}", f"--port={HEAD_PORT}", "--num-cpus=1",
                                   *common], self.env, os.path.join(self.root, "head.log"), self.head_cores)
            try:
                self._wait_for_port(HEAD_IP, HEAD_PORT, self.head, timeout)
                break
            except RuntimeError:
                self.head.stop()
                if attempt == attempts - 1:
                    raise
        self.start_learner_node(timeout, attempts)
        return self

    def start_learner_node(self, timeout: float = 180.0, attempts: int = ATTEMPTS) -> None:
        """Starts (or starts again) the learner node and waits until it has joined (retried as in :meth:`start`)."""
        for attempt in range(attempts):
            try:
                self._start_learner_node(timeout)
                return
            except RuntimeError:
                self.learner.stop()
                if attempt == attempts - 1:
                    raise

    def _start_learner_node(self, timeout: float) -> None:
        common = ["--disable-usage-stats", f"--object-store-memory={OBJECT_STORE_BYTES}"]
        self.learner = LocalNode([f"--address={self.address}", f"--node-ip-address={LEARNER_IP}",
                                  f"--num-cpus={self.learner_cpus}",
                                  f"--resources={json.dumps({LEARNER_RESOURCE: self.learner_resource})}", *common],
                                 self.env, os.path.join(self.root, "learner.log"), self.learner_cores)
        deadline = time.monotonic() + timeout
        while self.learner.pid_of("raylet") is None or not self._registered(LEARNER_IP):
            if self.learner.proc.poll() is not None:
                raise RuntimeError(f"the learner node exited; its log:\n{self._tail('learner.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the learner node did not join within {timeout} s; its log:\n"
                                   f"{self._tail('learner.log')}")
            time.sleep(0.2)

    def _registered(self, ip: str) -> bool:
        # `ray start --block` prints this once the node is up and registered with the GCS.
        try:
            with open(os.path.join(self.root, "learner.log"), errors="replace") as f:
                return "Ray runtime started" in f.read()
        except FileNotFoundError:
            return False

    def _wait_for_port(self, host: str, port: int, node: LocalNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        log = os.path.basename(node.log_path)
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                with open(node.log_path, errors="replace") as f:
                    if "Ray runtime started" in f.read():
                        return
            except OSError:
                pass
            if node.proc.poll() is not None:
                raise RuntimeError(f"the Ray node exited; its log:\n{self._tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray node did not start within {timeout} s; its log:\n{self._tail(log)}")
            time.sleep(0.2)

    def _tail(self, name: str, lines: int = 30) -> str:
        try:
            with open(os.path.join(self.root, name), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def pids(self) -> list[int]:
        """Every live process of the cluster."""
        return [pid for node in (self.head, self.learner) if node is not None for pid in node.pids()]

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stops both nodes (every process), removes the shared memory they left (as a resource
        tracker would, but it is stopped with them) and the cluster's files if this object made them.

        Each node gets ``grace_s`` after SIGTERM, then SIGKILL: the learner node's processes are
        gone within about a second, but the head's raylet takes some 10 s and its GCS and
        autoscaler do not exit on SIGTERM at all, and a throwaway cluster keeps nothing they
        could save.
        """
        members = set(self.pids())
        for node in (self.learner, self.head):
            if node is not None:
                node.stop(grace_s)
        for name in os.listdir("/dev/shm"):
            parts = name.split("_")
            if name.startswith(SEGMENT_PREFIX) and any(p.isdigit() and int(p) in members for p in parts[1:3]):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join("/dev/shm", name))
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``sid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def _signal_session(sid: int, signum: int) -> None:
    for pid in session_members(sid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
