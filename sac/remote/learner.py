"""The learner: a Ray actor on the learning machine that holds the agent and the replay buffer.

The bridge (sac/remote/bridge.py) creates it as ``ray.remote(SACLearner).options(...)``: named in
:data:`~sac.remote.config.NAMESPACE`, detached (it outlives any one bridge, so several actors can
feed it and a robot side that restarts finds it), with Ray's ``max_restarts``, placed by the
:data:`~sac.remote.config.LEARNER_RESOURCE` (and one GPU when it updates on cuda), and with
several call threads, so the bridges' calls are answered while an update runs in its own thread.

What it keeps on the learner machine's disk, in ``<learner_dir>/<name>/``:

* ``agent.pt``: the full agent state (networks, targets, optimizers, temperature, update counter,
  RNGs), written atomically every ``snapshot_every_s``, at every checkpoint call and at shutdown;
* ``journal/``: every batch of transitions it stored (sac/remote/journal.py); a batch is
  acknowledged only once it is there, with each actor's sequence numbers;
* ``last_error.txt``: the traceback that ended the previous process, if one failed.

A learner that starts (or that Ray restarts after its process died) loads ``agent.pt`` and reads
the journal back into a fresh replay buffer, so it knows, per actor, the next transition it
expects: batches the robot side sends again are stored once. The updates since the last
``agent.pt`` are what a restart loses.

Every public method except the constructor is a remote call; they run in the learner process.
"""
from __future__ import annotations

import io
import os
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from typing import Any

import numpy as np
import torch

from communicators.realtime import run_in_background
from sac.agent import SACAgent
from sac.async_learner import STAT_KEYS
from sac.checkpoint import state_bytes, write_atomically
from sac.remote.config import LearnerSpec, code_fingerprint
from sac.remote.journal import ReplayJournal
from sac.remote.outbox import batch_transitions
from sac.replay_buffer import SharedReplayBuffer
from sac.weights import flatten_state

AGENT_FILE, ERROR_FILE, JOURNAL_DIR = "agent.pt", "last_error.txt", "journal"


def make_agent(spec: LearnerSpec, device: str) -> SACAgent:
    """The learner's agent, built from the spec (the one place that knows the agent's signature)."""
    return SACAgent(spec.observation_space, spec.action_dim, spec.agent_config, device=device, seed=spec.seed)


def make_replay(spec: LearnerSpec) -> SharedReplayBuffer:
    """The learner's replay buffer, built from the spec (the one place that knows its signature).

    Private to the actor's process: Ray kills a dead worker's children, its resource tracker among
    them, so a named segment of a SIGKILLed learner would outlive it.
    """
    return SharedReplayBuffer(spec.observation_space, spec.action_dim, spec.replay_capacity, extras=spec.extras,
                              private=True)


def learner_directory(learner_dir: str, name: str) -> str:
    """``<learner_dir>/<name>`` on this machine, with ``~`` expanded and the name made a safe file name."""
    return os.path.join(os.path.expanduser(learner_dir), re.sub(r"[^A-Za-z0-9._=-]", "_", name))


class SACLearner:
    """SAC updates on the learning machine, fed by one or more robot-side bridges.

    Args:
        name: the learner's name (its actor name and its directory's).
        spec: what its agent and replay buffer are built from.
        learner_dir: the parent of its checkpoint directory, on this machine.
    """

    def __init__(self, name: str, spec: LearnerSpec, learner_dir: str) -> None:
        self.name, self.spec = name, spec
        self.directory = learner_directory(learner_dir, name)
        os.makedirs(self.directory, exist_ok=True)
        torch.set_num_threads(spec.learner.num_threads)
        device = spec.learner.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.agent = make_agent(spec, device)
        self.replay = make_replay(spec)
        self.keys = list(spec.observation_space.spaces)
        self.incarnation = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()  # the agent: an update against reads of its state
        self._add_lock = threading.Lock()  # one replay-buffer writer at a time
        self._stop = threading.Event()
        self._contact = time.monotonic()
        self.next_seq: dict[str, int] = {}
        self.env_steps: dict[str, int] = {}
        self.attached: set[str] = set()
        self._weights: tuple[int, np.ndarray, float] | None = None
        self._sums = np.zeros(2 * len(STAT_KEYS))
        self._idle: str | None = "starting"
        self._failed: str | None = None
        self.previous_error = self._read_error()
        self.journal = ReplayJournal(os.path.join(self.directory, JOURNAL_DIR), keep_transitions=spec.replay_capacity)
        self.seeded, self.restored_transitions = self._restore()
        self.restored_updates = self.agent.num_updates
        self._thread: threading.Thread | None = None
        if self.seeded:
            self._start_updates()

    # ----------------------------------------------------------------- start
    def _read_error(self) -> str | None:
        path = os.path.join(self.directory, ERROR_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            text = f.read()
        os.remove(path)
        return text

    def _restore(self) -> tuple[bool, int]:
        seeded = False
        path = os.path.join(self.directory, AGENT_FILE)
        if os.path.exists(path):
            self.agent.load_state_dict(torch.load(path, weights_only=False, map_location=self.agent.device))
            seeded = True
        count = 0
        for actor_id, first_seq, env_step, batch in self.journal.read():
            for transition in batch_transitions(batch, self.keys, self.spec.extras):
                self.replay.add(*transition)
            n = len(batch["reward"])
            count += n
            self.next_seq[actor_id] = max(self.next_seq.get(actor_id, 0), first_seq + n)
            self.env_steps[actor_id] = max(self.env_steps.get(actor_id, 0), env_step)
        return seeded, count

    def _start_updates(self) -> None:
        self._publish()
        self._thread = threading.Thread(target=self._updates, name="sac-updates", daemon=True)
        self._thread.start()

    # ----------------------------------------------------------- remote calls
    def attach(self, actor_id: str, key: dict[str, Any]) -> dict[str, Any]:
        """Registers an actor; returns where it stands with this learner.

        Raises:
            ValueError: the actor's spaces, agent or replay size differ from the learner's.
        """
        self._contact = time.monotonic()
        mine = self.spec.key()
        if key != mine:
            diff = {k: (key[k], mine[k]) for k in mine if key.get(k) != mine[k]}
            raise ValueError(f"learner {self.name!r} was built for other settings than this run's: {diff} (this "
                             f"run's, the learner's); give this run another --ray_learner")
        self.attached.add(actor_id)
        import ray

        return {"next_seq": self.next_seq.get(actor_id, 0), "seeded": self.seeded, "incarnation": self.incarnation,
                "num_updates": self.agent.num_updates, "device": str(self.agent.device), "host": socket.gethostname(),
                "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), "directory": self.directory,
                "restored_transitions": self.restored_transitions, "previous_error": self.previous_error,
                "fingerprint": code_fingerprint(), "actors": len(self.attached)}

    def seed(self, state: bytes) -> int:
        """Starts an empty learner from a full agent state (a new run's, or a resumed run's whose learner
        kept nothing); ignored if it has one already. Returns the agent's update count."""
        self._contact = time.monotonic()
        with self._lock:
            if not self.seeded:
                self.agent.load_state_dict(torch.load(io.BytesIO(state), weights_only=False,
                                                      map_location=self.agent.device))
                self.seeded = True
                self._write_agent_locked()
                self._start_updates()
        return self.agent.num_updates

    def add(self, actor_id: str, first_seq: int, env_step: int, batch: dict[str, np.ndarray]) -> dict[str, int]:
        """Stores a batch of an actor's transitions ``first_seq, first_seq + 1, ...`` (journal first,
        then the replay buffer); what it already has is skipped. Returns ``{"stored_to": next
        expected sequence number, "gap": transitions missing before this batch}``."""
        with self._add_lock:
            self._contact = time.monotonic()
            expected = self.next_seq.get(actor_id, 0)
            n = len(batch["reward"])
            self.env_steps[actor_id] = max(self.env_steps.get(actor_id, 0), int(env_step))
            if first_seq + n <= expected:
                return {"stored_to": expected, "gap": 0}
            skip = max(0, expected - first_seq)
            if skip:
                batch = {name: array[skip:] for name, array in batch.items()}
                first_seq += skip
            self.journal.append(actor_id, first_seq, env_step, batch)
            for transition in batch_transitions(batch, self.keys, self.spec.extras):
                self.replay.add(*transition)
            self.next_seq[actor_id] = first_seq + len(batch["reward"])
            return {"stored_to": self.next_seq[actor_id], "gap": max(0, first_seq - expected)}

    def poll(self, newer_than: int) -> dict[str, Any]:
        """The newest weights if their version is above ``newer_than``, and how learning goes."""
        self._contact = time.monotonic()
        answer = {"incarnation": self.incarnation, "pid": os.getpid(), "num_updates": self.agent.num_updates,
                  "idle": self._idle, "restored": (self.restored_updates, self.restored_transitions),
                  "sums": self._sums.copy(), "failed": self._failed, "transitions": len(self.replay), "version": 0}
        weights = self._weights
        if weights is not None:
            answer["version"] = weights[0]
            if weights[0] > newer_than:
                answer.update(weights=weights[1], published_at=weights[2])
        return answer

    def checkpoint(self) -> tuple[dict[str, Any], bytes]:
        """Writes ``agent.pt`` now; returns what it holds and the full agent state (``torch.save`` bytes)."""
        self._contact = time.monotonic()
        with self._lock:
            state = self._write_agent_locked()
        info = {"directory": self.directory, "num_updates": self.agent.num_updates, "host": socket.gethostname(),
                "transitions": len(self.replay), "journal_transitions": self.journal.transitions,
                "next_seq": dict(self.next_seq)}
        return info, state

    def full_state(self) -> bytes:
        """The full agent state (``torch.save`` bytes), for the robot side's copy of the last good state."""
        self._contact = time.monotonic()
        with self._lock:
            return state_bytes(self.agent.state_dict())

    def detach(self, actor_id: str) -> int:
        """An actor leaves; returns how many remain attached."""
        self._contact = time.monotonic()
        self.attached.discard(actor_id)
        return len(self.attached)

    def shutdown(self) -> None:
        """Stops updating and writes ``agent.pt`` (the bridge then ends the actor)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        with self._lock:
            if self.seeded:
                self._write_agent_locked()
        self.journal.close()
        self.replay.close()  # its shared memory goes now: the bridge ends this process next

    # ---------------------------------------------------------------- updates
    def _updates(self) -> None:
        try:
            config, batch_size = self.spec.learner, self.agent.config.batch_size
            # Like the local learner, the updates take only CPU time that the learner machine's
            # other work leaves (on one machine with the robot side: its action cycle); the call
            # threads that answer the bridges keep the normal policy.
            run_in_background(config.scheduler, config.nice, this_thread_only=True)
            last_snapshot = time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() - self._contact > self.spec.orphan_after_s:
                    self._orphaned()
                    return
                self._idle = self._why_idle(batch_size)
                if self._idle:
                    time.sleep(0.005)
                    continue
                with self._lock:
                    info = self.agent.update(self.replay.sample(batch_size, self.agent.np_rng))
                    if self.agent.num_updates % config.publish_every == 0:
                        self._publish()
                k = len(STAT_KEYS)
                for i, key in enumerate(STAT_KEYS):
                    if key in info:
                        self._sums[i] += info[key]
                        self._sums[k + i] += 1
                if time.monotonic() - last_snapshot > self.spec.snapshot_every_s:
                    with self._lock:
                        self._write_agent_locked()
                    last_snapshot = time.monotonic()
        except BaseException:  # noqa: BLE001 - any failure ends this process, so Ray restarts it
            self._die(traceback.format_exc())

    def _why_idle(self, batch_size: int) -> str | None:
        if len(self.replay) < batch_size:
            return f"waiting for transitions ({len(self.replay)} of the batch's {batch_size})"
        allowed = (sum(self.env_steps.values()) - self.spec.learner.update_after) * self.spec.learner.max_update_freq
        if self.agent.num_updates >= allowed:
            return "waiting for env steps (the update cap)"
        return None

    def _publish(self) -> None:
        self._weights = (self.agent.num_updates, flatten_state(self.agent.policy_state()), time.time())

    def _write_agent_locked(self) -> bytes:
        state = state_bytes(self.agent.state_dict())
        write_atomically(os.path.join(self.directory, AGENT_FILE), state)
        return state

    def _die(self, text: str) -> None:
        self._failed = text
        print(f"SAC learner {self.name!r} failed:\n{text}", file=sys.stderr, flush=True)
        with open(os.path.join(self.directory, ERROR_FILE), "w") as f:
            f.write(text)
        time.sleep(1.0)  # a bridge's poll may still fetch the traceback
        os._exit(1)

    def _orphaned(self) -> None:
        import ray

        print(f"SAC learner {self.name!r}: no actor called for {self.spec.orphan_after_s:g} s; saving and "
              "exiting", file=sys.stderr, flush=True)
        with self._lock:
            self._write_agent_locked()
        self.journal.close()
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
