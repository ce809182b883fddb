"""What the acting process and the bridge process tell each other, besides transitions and weights.

The bridge writes a status block in shared memory (times of its own loop, of the learner's last
answer and of the last new weights; counters; its state) and, per weights version it publishes,
when the learner published it (for the staleness figure). Messages (warnings, the failure that
ends learning, events for summary.json) go through a pipe from the bridge; commands (save the
agent here, stop) go through a pipe to it. The acting process only ever polls: nothing here waits.

Times are ``time.monotonic()`` (system-wide on Linux, so comparable between the two processes)
except the publication times, which are the learner's ``time.time()`` (comparable only with
synchronised clocks; the benchmark runs both on one machine).
"""
from __future__ import annotations

import multiprocessing
import time
from typing import Any

import numpy as np

from communicators.shared_memory import SharedArrays

STARTING, READY, FAILED, STOPPED = range(4)
"""Bridge states."""
META_SLOTS = 64
# status fields
(BRIDGE_BEAT, LEARNER_ANSWER, NEW_WEIGHTS, FRESH, STATE, NUM_UPDATES, STORED, LOST, RESTARTS, SAVE_DONE,
 SAVE_FAILED, LEARNER_VERSION, _N) = range(13)


class BridgeLink:
    """The status block and the two pipes between the acting process and its bridge.

    Made in the acting process and passed to the bridge process as an argument.
    """

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._shared = SharedArrays({"status": ((_N,), np.float64), "meta": ((META_SLOTS, 4), np.float64)},
                                    tag="bridge")
        self._messages_recv, self._messages_send = ctx.Pipe(duplex=False)
        self._commands_recv, self._commands_send = ctx.Pipe(duplex=False)
        self.status[FRESH] = self.status[BRIDGE_BEAT] = time.monotonic()

    @property
    def status(self) -> np.ndarray:
        return self._shared["status"]

    # ----------------------------------------------------------------- bridge
    def set(self, index: int, value: float) -> None:
        """Writes one status field (bridge process)."""
        self.status[index] = value

    def post_meta(self, version: int, learner_version: int, published_at: float) -> None:
        """Records when the learner published the weights that become local ``version`` (bridge,
        before publishing them)."""
        self._shared["meta"][version % META_SLOTS] = (version, learner_version, published_at, time.time())

    def send(self, kind: str, payload: Any) -> None:
        """Sends a message to the acting process: ``("warn", text)``, ``("info", text)``,
        ``("fail", text)`` or ``("event", dict)`` (bridge process)."""
        self._messages_send.send((kind, payload))

    def poll_command(self) -> tuple | None:
        """The next command from the acting process, or None (bridge process)."""
        return self._commands_recv.recv() if self._commands_recv.poll() else None

    # ----------------------------------------------------------------- actor
    def get(self, index: int) -> float:
        """Reads one status field (acting process)."""
        return float(self.status[index])

    def meta(self, version: int) -> tuple[int, float, float] | None:
        """(the learner's version, its publication time, the bridge's arrival time) of local weights
        ``version``, if still recorded (acting process)."""
        row = self._shared["meta"][version % META_SLOTS].copy()
        return (int(row[1]), float(row[2]), float(row[3])) if int(row[0]) == version else None

    def messages(self) -> list[tuple[str, Any]]:
        """Every message the bridge sent since the last call; never waits (acting process)."""
        out = []
        while not self._messages_recv.closed and self._messages_recv.poll():
            try:
                out.append(self._messages_recv.recv())
            except EOFError:  # the bridge died; the caller sees that from the process
                break
        return out

    def command(self, *command: Any) -> None:
        """Sends a command to the bridge (acting process)."""
        self._commands_send.send(command)

    def close(self) -> None:
        """Closes the pipes and frees the status block (acting process). Idempotent."""
        for conn in (self._messages_recv, self._messages_send, self._commands_recv, self._commands_send):
            conn.close()
        self._shared.close()
