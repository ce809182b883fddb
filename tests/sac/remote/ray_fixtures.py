"""Helpers of the remote-learner tests: the flags of a run on the test cluster, finding the learner's
process, and a thread that watches a run's output and injects a fault at the right moment."""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from sac.remote.local_cluster import HEAD_IP, LocalCluster


def ray_args(cluster: LocalCluster) -> list[str]:
    """The flags of a run whose learner is on the test cluster."""
    return ["--async_mode", "--learner", "ray", "--ray_address", cluster.address, "--ray_node_ip", HEAD_IP]


def learner_pid(cluster: LocalCluster) -> int | None:
    """The pid of the learner actor's process on the learner node (Ray names it ray::SACLearner...)."""
    return cluster.learner.pid_of("SACLearner")


def kill(pid: int | None, signum: int = signal.SIGKILL) -> None:
    assert pid is not None, "the process to signal was not found"
    os.kill(pid, signum)


class Watcher:
    """Reads a test's captured output in a thread and runs actions once texts appear in it.

    Args:
        capsys: the test's capsys fixture (only this thread reads it while the watcher runs).
    """

    def __init__(self, capsys) -> None:
        self.capsys, self.out, self.err = capsys, "", ""
        self.times: dict[str, float] = {}
        self._triggers: list[tuple[str, Callable[[], None] | None]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def on(self, text: str, action: Callable[[], None] | None = None) -> Watcher:
        """Runs ``action`` (if any) the first time ``text`` is in stdout or stderr; records when."""
        self._triggers.append((text, action))
        return self

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops watching and reads what is left."""
        self._done.set()
        self._thread.join(10)
        self._read()

    def _read(self) -> None:
        captured = self.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err

    def _watch(self) -> None:
        while not self._done.is_set():
            self._read()
            for text, action in self._triggers:
                if text not in self.times and (text in self.out or text in self.err):
                    self.times[text] = time.monotonic()
                    if action is not None:
                        action()
            time.sleep(0.02)
