"""The remote learner as the acting loop sees it: :class:`RayUpdater`, the third
:class:`~sac.training.updaters.Updater`.

The acting process never imports Ray. Per step it puts the transition in the shared-memory outbox
(never waits), posts its env step, reads the bridge's messages, checks that the bridge process
lives and what the watchdog says, and pulls the newest weights the bridge wrote (never waits).
Everything that talks to Ray is in the bridge process (sac/remote/bridge.py).

Which side holds what, for checkpoints and resume:

* **the learner machine**, in ``~/.franka-rtrl/learners/<learner name>/``: the full agent state
  (``agent.pt``, also written every ``snapshot_every_s``), the replay journal (every transition it
  stored, per actor) and the counters derived from it. A restarted learner resumes from these.
* **the robot side**, in each checkpoint ``<run>/model/step_<S>/``: ``agent.pt``, a copy of the
  learner's full agent state made at that save (so ``--eval --load_model`` and a learner that lost
  its disk still have a whole agent), ``learner.json`` (the learner's name and address, this actor's
  id for its transitions' numbering, what the learner's checkpoint held at that save) and, from
  the session, ``trainer.pt``. No replay buffer: it stays with the learner.

A checkpoint first makes the learner store every transition the actor has sent, so the learner's
journal holds the whole run up to that checkpoint. After a learner failure the robot side saves
its last good copy of the full agent state (refreshed every ``snapshot_every_s`` and at every save).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from typing import Any

import numpy as np
import torch

from sac.agent import SACAgent
from sac.async_learner import UpdateStats
from sac.checkpoint import state_bytes, write_atomically
from sac.errors import LearnerError
from sac.remote import link as L
from sac.remote.config import LearnerSpec, RemoteLearnerConfig
from sac.remote.link import BridgeLink
from sac.remote.outbox import TransitionOutbox
from sac.remote.watchdog import LearnerWatchdog
from sac.training.updaters import AGENT_FILE, Updater
from sac.weights import WeightPublisher

LEARNER_FILE = "learner.json"


class RayUpdater(Updater):
    """Learning on a Ray cluster: a learner actor on another machine, fed through a bridge process.

    Args:
        agent: the acting agent (on the CPU); the learner starts from its full state.
        observation_space: the env's observation space (a gymnasium ``Dict``).
        spec: what the learner builds its agent and replay buffer from.
        config: the cluster, the learner's name and the watchdog's budget.
    """

    mode = "ray"

    def __init__(self, agent: SACAgent, observation_space: Any, spec: LearnerSpec,
                 config: RemoteLearnerConfig) -> None:
        self.agent, self.spec, self.config = agent, spec, config
        self.name = config.learner_name
        self.actor_id = uuid.uuid4().hex[:12]
        self.outbox = TransitionOutbox(observation_space, spec.action_dim, config.outbox_capacity, spec.extras)
        self.weights = WeightPublisher(agent.policy_state())
        self.link = BridgeLink()
        self._stats = UpdateStats()
        self.watchdog = LearnerWatchdog(self.name, config.warn_after_s, config.stop_after_s)
        self._files = tempfile.mkdtemp(prefix="rtrl_ray_updater_")
        self._seed_file = os.path.join(self._files, "seed.pt")
        self._snapshot_file = os.path.join(self._files, "last_good_agent.pt")
        self._process: multiprocessing.Process | None = None
        self._bridge_pid: int | None = None
        self._failure: str | None = None
        self._cause = "the learner does not answer"
        self._saves = 0
        self._saved: dict[int, dict] = {}
        self.transitions_sent = 0
        self.staleness_ms: list[float] = []
        self.events: list[dict] = []
        self.resumed_from: dict[str, Any] | None = None
        self.learner_info: dict[str, Any] = {}
        """Where the learner runs: host, pid, device, its checkpoint directory (once started)."""

    # ------------------------------------------------------------ lifecycle
    def storage_line(self) -> str:
        return (f"replay buffer: on the learner {self.name!r} (Ray at {self.config.address}), "
                f"{self.spec.replay_capacity} transitions; outbox: {self.outbox.capacity} transitions, "
                f"{self.outbox.nbytes / 1e6:.1f} MB of shared memory")

    def restore(self, checkpoint_dir: str) -> None:
        """Loads the checkpoint's agent (the learner's seed if it kept nothing) and this actor's id.

        Raises:
            LearnerError: the checkpoint has no learner.json (it is not a remote run's).
        """
        try:
            with open(os.path.join(checkpoint_dir, LEARNER_FILE)) as f:
                saved = json.load(f)
        except FileNotFoundError:
            raise LearnerError(f"{checkpoint_dir} has no {LEARNER_FILE}: it was not written by a --learner ray "
                               "run") from None
        self.agent.load_state_dict(torch.load(os.path.join(checkpoint_dir, AGENT_FILE), weights_only=False,
                                              map_location="cpu"))
        self.actor_id = saved["actor_id"]
        self.resumed_from = saved

    def start(self) -> None:
        """Starts the bridge and waits until the learner is attached and its first weights are here.

        Raises:
            LearnerError: the cluster or the learner cannot be reached; the message says why.
        """
        from sac.remote.bridge import bridge_main  # imports no Ray at module level

        torch.set_num_threads(1)  # policy inference only; the devices and the bridge need the other cores
        state = state_bytes(self.agent.state_dict())
        write_atomically(self._seed_file, state)
        write_atomically(self._snapshot_file, state)
        ctx = multiprocessing.get_context("spawn")
        self._process = ctx.Process(
            target=bridge_main, name="sac-ray-bridge", daemon=True,
            args=(self.config, self.spec, self.actor_id, self.outbox, self.weights, self._stats, self.link,
                  self._seed_file, self._snapshot_file, os.getpid()))
        self._process.start()
        self._bridge_pid = self._process.pid
        deadline = time.monotonic() + self.config.connect_timeout_s + 30
        while self.link.get(L.STATE) == L.STARTING:
            self._read_messages()
            self._raise_if_failed()
            if time.monotonic() > deadline:
                raise LearnerError(f"the Ray bridge did not connect to the learner {self.name!r} at "
                                   f"{self.config.address} within {self.config.connect_timeout_s + 30:g} s")
            time.sleep(0.02)
        self._read_messages()
        self._raise_if_failed()
        self.weights.pull(self.agent.policy)

    def close(self) -> None:
        """Stops the bridge (it sends what is left and leaves the learner), then frees everything."""
        if self._process is not None and self._process.pid is not None:
            if self._process.is_alive():
                try:
                    self.link.command("stop", 5.0 if self._failure else 20.0)
                except OSError:
                    pass
                self._process.join(30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._read_messages()
            self._process = None
        for part in (self.outbox, self.weights, self._stats, self.link):
            part.close()
        shutil.rmtree(self._files, ignore_errors=True)

    @property
    def bridge_pid(self) -> int | None:
        """The bridge process's pid (None before :meth:`start`)."""
        return self._bridge_pid

    # -------------------------------------------------------- per step
    def add(self, obs, action, reward, next_obs, terminated, extras) -> None:
        self.transitions_sent += 1
        self.outbox.put(obs, action, reward, next_obs, terminated, extras)

    def after_step(self, env_step: int) -> None:
        self.outbox.set_env_step(env_step)
        self._read_messages()
        self._raise_if_failed()
        self._watch()
        version = self.weights.pull(self.agent.policy)  # newest weights, if any; never waits
        if version is not None:
            self._pulled(version)

    def _pulled(self, version: int) -> None:
        meta = self.link.meta(version)
        if meta is None:
            return
        _, published_at, received_at = meta
        now = time.time()
        self.staleness_ms.append((now - published_at) * 1e3)
        for event in self.events:  # the first weights of a restarted learner: learning flows again
            if event["event"] == "learner_restarted" and "weights_again_wall" not in event \
                    and received_at >= event["wall_time"]:
                event["weights_again_wall"] = now

    def _watch(self) -> None:
        now = time.monotonic()
        try:
            self.watchdog.check(now - self.link.get(L.FRESH), self._stale_cause(now))
        except LearnerError as err:
            self._failure = str(err)  # a checkpoint now takes the last good agent state
            raise

    def _raise_if_failed(self) -> None:
        if self._failure is None and self._process is not None and not self._process.is_alive():
            self._read_messages()  # its last words, if it had time for them
            if self._failure is None:
                self._failure = (f"the Ray bridge process (PID {self._process.pid}) exited with code "
                                 f"{self._process.exitcode}: the robot side lost its link to the learner {self.name!r}")
        if self._failure is not None:
            raise LearnerError(f"learning on the Ray cluster stopped; the actor kept its last weights (version "
                               f"{self.weights.pulled_version}).\n{self._failure}")

    def _stale_cause(self, now: float) -> str:
        if now - self.link.get(L.BRIDGE_BEAT) > 2.0:
            return f"the bridge process has not run its loop for {now - self.link.get(L.BRIDGE_BEAT):.1f} s"
        answered = now - self.link.get(L.LEARNER_ANSWER)
        if answered > 1.0:
            return f"the learner has not answered for {answered:.1f} s; last news: {self._cause}"
        return "the learner answers but makes no updates"

    def _read_messages(self) -> None:
        for kind, payload in self.link.messages():
            if kind == "fail":
                self._failure = payload
            elif kind == "cause":
                self._cause = payload
            elif kind == "event" and payload["event"] == "attached":
                self.learner_info = payload
            elif kind == "event":
                self.events.append(payload)
                self.learner_info["pid"] = payload.get("pid")
            elif kind == "saved" or kind == "save_failed":
                self._saved[payload["request"]] = payload
            else:  # "info" and "warn": one line each on stderr, beside the run's own lines
                prefix = "warning: " if kind == "warn" else ""
                print(f"{prefix}{payload}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ figures
    def stats(self) -> dict[str, float]:
        return self._stats.means()  # the bridge publishes the learner's sums, kept across its restarts

    @property
    def num_updates(self) -> int:
        if self._process is None:
            return self.agent.num_updates
        return int(self.link.get(L.NUM_UPDATES))

    @property
    def acting_updates(self) -> int:
        return self.weights.pulled_updates

    def summary(self) -> dict[str, Any]:
        staleness = np.array(self.staleness_ms) if self.staleness_ms else np.full(1, np.nan)
        return {"mode": self.mode, "learner": self.name, "ray_address": self.config.address,
                "learner_restarts": int(self.link.get(L.RESTARTS)), "transitions_sent": self.transitions_sent,
                "transitions_stored": int(self.link.get(L.STORED)),
                "transitions_lost": self.outbox.dropped + int(self.link.get(L.LOST)),
                "weights_received": len(self.staleness_ms),
                "staleness_p50_ms": float(np.percentile(staleness, 50)),
                "staleness_p99_ms": float(np.percentile(staleness, 99)),
                "watchdog_warnings": self.watchdog.warnings, "learner_events": self.events}

    # ---------------------------------------------------------- checkpoints
    def write_checkpoint(self, directory: str) -> None:
        """Has the learner store every transition sent and write its checkpoint, then writes the full
        agent state it returned (``agent.pt``) and ``learner.json``; with the learner unreachable,
        writes the last good agent state instead."""
        path = os.path.join(directory, AGENT_FILE)
        info, note = self._save_through_bridge(path)
        if info is None:
            shutil.copyfile(self._snapshot_file, path)
        record = {"learner": self.name, "ray_address": self.config.address, "actor_id": self.actor_id,
                  "transitions_sent": self.transitions_sent, "learner_checkpoint": info, "note": note,
                  "written_at": time.time()}
        with open(os.path.join(directory, LEARNER_FILE), "w") as f:
            json.dump(record, f, indent=2)

    def _save_through_bridge(self, path: str) -> tuple[dict | None, str]:
        if self._failure is not None or self._process is None or not self._process.is_alive():
            return None, "the learner could not be reached: agent.pt is the robot side's last good copy"
        self._saves += 1
        request = self._saves
        self.link.command("save", path, request)
        deadline = time.monotonic() + self.config.call_timeout_s + 10
        while request not in self._saved:
            self._read_messages()
            try:  # a learner that stopped answering is not waited for past the watchdog's budget
                self._watch()
            except LearnerError:
                break  # the next step raises it (the session then saves the last good copy)
            if not self._process.is_alive() or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        answer = self._saved.pop(request, None)
        if answer is None or "info" not in answer:
            why = answer["error"] if answer else "the bridge did not answer"
            print(f"warning: the learner {self.name!r} could not save ({why}); the checkpoint holds the robot "
                  "side's last good copy of the agent", file=sys.stderr, flush=True)
            return None, f"the learner could not save ({why}): agent.pt is the robot side's last good copy"
        return answer["info"], "agent.pt is the learner's agent at this save"
