"""The bridge: the robot side's only Ray driver, in a process of its own beside the action cycle.

It connects to the cluster, finds or creates the learner (sac/remote/learner.py), and then loops:

* drains the outbox (sac/remote/outbox.py) every ``send_period_s`` into one batch and sends it,
  one batch in flight at a time so the learner stores them in order; a batch stays in its resend
  list until the learner acknowledges it (it is in the learner's journal), so after a learner
  restart it is sent again; past ``resend_capacity`` the oldest are dropped and counted lost;
* polls the learner for newer weights (one poll in flight) and writes them into the shared
  versioned weights (sac/weights.py) that the actor pulls between steps, with their publication
  time for the staleness figure; an answer that the learner is waiting counts as progress too;
* keeps the status block (sac/remote/link.py) that the acting process's watchdog reads, and passes
  on Ray's own failure signals: an unavailable learner (Ray restarting it), a new learner process
  (a restart: it resumed from its checkpoint), a learner Ray will not restart, its node declared dead;
* saves on command: first everything the outbox holds is stored, then the learner writes its
  checkpoint and the bridge writes the full agent state it returns where it was asked;
* copies the learner's full agent state every ``snapshot_every_s`` to the robot side (the last
  good state, saved if the learner is lost).

It stops on the acting process's command or when that process dies: it sends what is left,
leaves the learner, and the last actor to leave shuts the learner down (it saves first). The bridge
never blocks the action cycle: if it hangs or dies, the watchdog and the acting process's liveness
check stop the run cleanly.
"""
from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from communicators.realtime import run_in_background
from sac.async_learner import STAT_KEYS, UpdateStats
from sac.checkpoint import write_atomically
from sac.remote import link as L
from sac.remote.config import LEARNER_DEMAND, LEARNER_RESOURCE, NAMESPACE, LearnerSpec, RemoteLearnerConfig, \
    code_fingerprint
from sac.remote.link import BridgeLink
from sac.remote.outbox import TransitionOutbox
from sac.weights import WeightPublisher

POLL_PERIOD_S = 0.02
RETRY_S = 0.5
NODE_CHECK_S = 2.0
MAX_BATCH = 512
BRIDGE_NICE = 5
"""Nice increment of the bridge process (under SCHED_BATCH), so the action cycle runs first."""


@dataclass
class _Batch:
    first_seq: int
    batch: dict[str, np.ndarray]
    env_step: int

    @property
    def size(self) -> int:
        return len(self.batch["reward"])


def bridge_main(config: RemoteLearnerConfig, spec: LearnerSpec, actor_id: str, outbox: TransitionOutbox,
                weights: WeightPublisher, stats: UpdateStats, link: BridgeLink, seed_file: str, snapshot_file: str,
                parent_pid: int) -> None:
    """The bridge process's main function (started by :class:`~sac.remote.updater.RayUpdater`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the actor decides
    # Before Ray starts its threads, which inherit it: the action cycle preempts the bridge's
    # (de)serialising on wake-up; it still gets a fair share, unlike an idle-class learner.
    run_in_background("batch", BRIDGE_NICE)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    bridge = Bridge(config, spec, actor_id, outbox, weights, stats, link, seed_file, snapshot_file, parent_pid)
    try:
        bridge.connect()
        bridge.run()
    except BaseException as err:  # noqa: BLE001 - reported to the acting process, which stops the run
        text = str(err) if isinstance(err, BridgeFailure) else traceback.format_exc()
        link.send("fail", text)
        link.set(L.STATE, L.FAILED)
    finally:
        bridge.close()


class BridgeFailure(RuntimeError):
    """Learning cannot go on; the message is what the acting process reports."""


class Bridge:
    """The bridge's state and loop (bridge process); see the module docstring."""

    def __init__(self, config: RemoteLearnerConfig, spec: LearnerSpec, actor_id: str, outbox: TransitionOutbox,
                 weights: WeightPublisher, stats: UpdateStats, link: BridgeLink, seed_file: str,
                 snapshot_file: str, parent_pid: int) -> None:
        self.config, self.spec, self.actor_id = config, spec, actor_id
        self.outbox, self.weights, self.stats, self.link = outbox, weights, stats, link
        self.seed_file, self.snapshot_file, self.parent_pid = seed_file, snapshot_file, parent_pid
        self.name = config.learner_name
        self.ray: Any = None
        self.learner: Any = None
        self.info: dict[str, Any] = {}
        self.base_seq = 0
        self.unacked: list[_Batch] = []
        self.in_flight: Any = None  # the add call of unacked[0]
        self.retry_at = 0.0
        self.poll_ref: Any = None
        self.poll_at = 0.0
        self.snapshot_ref: Any = None
        self.snapshot_at = time.monotonic() + config.snapshot_every_s
        self.node_check_at = 0.0
        self.node_dead = False
        self.version = -1  # the learner's newest weights version we have (this incarnation)
        self.incarnation: str | None = None
        self.sums_base = np.zeros(2 * len(STAT_KEYS))
        self.sums_last = np.zeros(2 * len(STAT_KEYS))
        self.stored = self.lost = self.restarts = 0
        self.last_send = 0.0
        self.connected = False
        self.stopped = False

    # ------------------------------------------------------------- connect
    def connect(self) -> None:
        """Connects, finds or creates the learner, seeds it if it is new, and waits for its first weights."""
        import ray

        self.ray = ray
        try:
            ray.init(address=self.config.address, _node_ip_address=self.config.node_ip, namespace=NAMESPACE,
                     log_to_driver=True, logging_level=logging.WARNING)
        except Exception as err:  # noqa: BLE001 - Ray raises several kinds; the message says what
            raise BridgeFailure(f"cannot connect to the Ray cluster at {self.config.address} as the node "
                                f"{self.config.node_ip or '(found by Ray)'}: {_first_line(err)}; is `ray start` "
                                f"running on this machine and on the head (docs/remote-learner.md)?") from None
        self.connected = True
        if not ray.cluster_resources().get(LEARNER_RESOURCE):
            raise BridgeFailure(f"no node of the Ray cluster at {self.config.address} offers the {LEARNER_RESOURCE} "
                                f"resource, so the learner has nowhere to run; start the learning machine's node "
                                f"with ray start --address={self.config.address} "
                                f"--resources='{{\"{LEARNER_RESOURCE}\": 1}}'")
        self.learner = self._learner_handle()
        deadline = time.monotonic() + self.config.connect_timeout_s
        self.info = self._call(self.learner.attach.remote(self.actor_id, self.spec.key()), deadline, "attach")
        self.base_seq = self.info["next_seq"]
        self.incarnation = self.info["incarnation"]
        if not self.info["seeded"]:
            with open(self.seed_file, "rb") as f:
                self._call(self.learner.seed.remote(f.read()), deadline, "seed")
        self.link.send("event", {"event": "attached", "wall_time": time.time(),
                                 **{k: self.info[k] for k in ("host", "pid", "device", "directory", "num_updates",
                                                              "restored_transitions", "actors")}})
        self.link.send("info", self._describe(self.info))
        if self.info["fingerprint"] != code_fingerprint():
            self.link.send("warn", f"the learner machine runs other learning code than this one (sac/ fingerprint "
                                   f"{self.info['fingerprint']} there, {code_fingerprint()} here); install the same "
                                   "commit on both machines")
        while self.version < 0:
            self._handle_poll(self._call(self.learner.poll.remote(-1), deadline, "first weights"), time.monotonic())
        self.link.set(L.STATE, L.READY)

    def _learner_handle(self) -> Any:
        from sac.remote.learner import SACLearner

        device = self.spec.learner.device
        gpu = device.startswith("cuda") or (device == "" and self.ray.cluster_resources().get("GPU", 0) > 0)
        options = dict(name=self.name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                       max_restarts=self.config.max_restarts, max_task_retries=0, max_concurrency=8, num_cpus=0,
                       num_gpus=1 if gpu else 0, resources={LEARNER_RESOURCE: LEARNER_DEMAND})
        return self.ray.remote(SACLearner).options(**options).remote(self.name, self.spec, self.config.learner_dir)

    def _call(self, ref: Any, deadline: float, what: str) -> Any:
        try:
            return self.ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
        except self.ray.exceptions.GetTimeoutError:
            raise BridgeFailure(f"the learner {self.name!r} did not answer ({what}) within "
                                f"{self.config.connect_timeout_s:g} s; is the learning machine's node up and does it "
                                f"offer {LEARNER_RESOURCE} (and a GPU for --device cuda)?") from None
        except self.ray.exceptions.RayTaskError as err:
            raise BridgeFailure(f"the learner {self.name!r} refused ({what}): {_cause(err)}") from None
        except self.ray.exceptions.RayActorError as err:
            raise BridgeFailure(f"the learner {self.name!r} died ({what}): {_first_line(err)}") from None

    def _describe(self, info: dict[str, Any]) -> str:
        restored = (f"it resumed from its checkpoint in {info['directory']} (update {info['num_updates']}, "
                    f"{info['restored_transitions']} transitions)" if info["seeded"] else
                    f"it starts from this run's agent (update {info['num_updates']}); its checkpoint goes to "
                    f"{info['directory']}")
        shared = f"; {info['actors']} actors feed it" if info["actors"] > 1 else ""
        return (f"learner {self.name!r} on {info['host']} (Ray at {self.config.address}, pid {info['pid']}, "
                f"{info['device']}): {restored}{shared}")

    # ---------------------------------------------------------------- loop
    def run(self) -> None:
        """Moves transitions and weights until told to stop or the acting process dies."""
        while not self.stopped:
            now = time.monotonic()
            if os.getppid() != self.parent_pid:
                self.stop(timeout=5.0)  # the acting process died: leave the learner as cleanly as we can
                break
            command = self.link.poll_command()
            if command is not None:
                self._command(command)
                continue
            self.step(now)
            time.sleep(0.005)

    def step(self, now: float) -> None:
        """One pass of the loop: send, collect acknowledgements, poll, snapshot, check the node."""
        if now - self.last_send >= self.config.send_period_s:
            self.last_send = now
            self._drain_outbox()
        self._send_next(now)
        self._poll(now)
        self._snapshot(now)
        self._check_node(now)
        self.link.set(L.BRIDGE_BEAT, now)

    def _command(self, command: tuple) -> None:
        if command[0] == "save":
            self._save(*command[1:])
        elif command[0] == "stop":
            self.stop(timeout=float(command[1]))

    # ---------------------------------------------------------- transitions
    def _drain_outbox(self) -> None:
        taken = self.outbox.take(MAX_BATCH)
        if taken is not None:
            index, batch = taken
            self.unacked.append(_Batch(self.base_seq + index, batch, self.outbox.env_step))
            excess = sum(b.size for b in self.unacked) - self.config.resend_capacity
            while excess > 0 and len(self.unacked) > 1:  # the oldest give way; the one in flight stays
                dropped = self.unacked.pop(1 if self.in_flight is not None else 0)
                self.lost += dropped.size
                excess -= dropped.size
                self.link.set(L.LOST, self.lost)

    def _send_next(self, now: float) -> None:
        ray = self.ray
        if self.in_flight is not None:
            ready, _ = ray.wait([self.in_flight], timeout=0)
            if not ready:
                return
            ref, self.in_flight = self.in_flight, None
            try:
                ray.get(ref)
            except ray.exceptions.ActorDiedError as err:
                self._learner_dead(err)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as err:
                self.retry_at = now + RETRY_S  # Ray is restarting the learner: send it again
                self.link.send("cause", f"Ray: {_first_line(err)}")
                return
            else:
                done = self.unacked.pop(0)
                self.stored += done.size
                self.link.set(L.STORED, self.stored)
        if self.unacked and now >= self.retry_at:
            head = self.unacked[0]
            self.in_flight = self.learner.add.remote(self.actor_id, head.first_seq, head.env_step, head.batch)

    # --------------------------------------------------------------- weights
    def _poll(self, now: float) -> None:
        ray = self.ray
        if self.poll_ref is None:
            if now >= self.poll_at:
                self.poll_ref = self.learner.poll.remote(self.version)
            return
        ready, _ = ray.wait([self.poll_ref], timeout=0)
        if not ready:
            return
        ref, self.poll_ref = self.poll_ref, None
        self.poll_at = now + POLL_PERIOD_S
        try:
            answer = ray.get(ref)
        except ray.exceptions.ActorDiedError as err:
            self._learner_dead(err)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as err:
            self.poll_at = now + RETRY_S
            self.link.send("cause", f"Ray: {_first_line(err)}")
        else:
            self._handle_poll(answer, now)

    def _handle_poll(self, answer: dict[str, Any], now: float) -> None:
        if answer["incarnation"] != self.incarnation:
            self._restarted(answer)
        if answer["failed"]:
            self.link.send("warn", f"the learner {self.name!r} failed and is exiting:\n{answer['failed']}")
        self.link.set(L.LEARNER_ANSWER, now)
        if "weights" in answer:
            local = self.weights.version + 1
            self.link.post_meta(local, answer["version"], answer["published_at"])
            self.weights.publish_flat(answer["weights"], updates=answer["version"])  # the version is the update count
            self.version = answer["version"]
            self.link.set(L.NEW_WEIGHTS, now)
            self.link.set(L.FRESH, now)
        elif answer["idle"]:
            self.link.set(L.FRESH, now)  # waiting for data: no weights are owed
        self.link.set(L.NUM_UPDATES, answer["num_updates"])
        self.link.set(L.LEARNER_VERSION, answer["version"])
        self.sums_last = answer["sums"]
        self.stats.publish(self.sums_base + self.sums_last)

    def _restarted(self, answer: dict[str, Any]) -> None:
        self.restarts += 1
        self.incarnation = answer["incarnation"]
        self.version = -1  # the new process numbers its weights from its checkpoint's update
        self.sums_base = self.sums_base + self.sums_last
        self.sums_last = np.zeros_like(self.sums_base)
        self.in_flight = None  # whatever was in flight went to the old process: send it again
        self.link.set(L.RESTARTS, self.restarts)
        updates, transitions = answer["restored"]
        self.link.send("event", {"event": "learner_restarted", "wall_time": time.time(), "pid": answer["pid"],
                                 "num_updates": updates, "transitions": transitions})
        self.link.send("info", f"the learner {self.name!r} was restarted by Ray ({self.restarts} of "
                               f"{self.config.max_restarts}): it resumed from its checkpoint at update {updates} "
                               f"with {transitions} transitions; what it had not stored is sent again")

    def _learner_dead(self, err: Exception) -> None:
        raise BridgeFailure(f"the learner {self.name!r} died and Ray will not restart it "
                            f"({self.restarts} of {self.config.max_restarts} restarts used): {_first_line(err)}")

    # -------------------------------------------------------- Ray's signals
    def _check_node(self, now: float) -> None:
        if now < self.node_check_at or self.node_dead:
            return
        self.node_check_at = now + NODE_CHECK_S
        for node in self.ray.nodes():
            if node["NodeID"] == self.info.get("node_id") and not node["Alive"]:
                self.node_dead = True
                reason = node.get("DeathReasonMessage") or "no reason given"
                self.link.send("cause", f"Ray reports the learner's node {node['NodeManagerAddress']} dead: {reason}")
                self.link.send("warn", f"Ray reports the node of the learner {self.name!r} "
                                       f"({node['NodeManagerAddress']}) dead: {reason}")

    # --------------------------------------------------------- saves, stop
    def _snapshot(self, now: float) -> None:
        ray = self.ray
        if self.snapshot_ref is None:
            if now >= self.snapshot_at:
                self.snapshot_ref = self.learner.full_state.remote()
            return
        ready, _ = ray.wait([self.snapshot_ref], timeout=0)
        if ready:
            ref, self.snapshot_ref = self.snapshot_ref, None
            self.snapshot_at = now + self.config.snapshot_every_s
            try:
                write_atomically(self.snapshot_file, ray.get(ref))
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                self.snapshot_at = now + RETRY_S

    def flush(self, deadline: float) -> bool:
        """Sends everything the outbox holds and waits for the learner to store it. True if it did."""
        self._drain_outbox()
        while (self.unacked or self.outbox.pending) and time.monotonic() < deadline:
            now = time.monotonic()
            self._drain_outbox()
            self._send_next(now)
            self._poll(now)
            self.link.set(L.BRIDGE_BEAT, now)
            time.sleep(0.002)
        return not self.unacked and not self.outbox.pending

    def _save(self, path: str, request: int) -> None:
        # Past the watchdog's budget the acting process saves its last good copy and stops the run.
        deadline = time.monotonic() + min(self.config.call_timeout_s, self.config.stop_after_s)
        try:
            if not self.flush(deadline):
                raise BridgeFailure(f"the learner {self.name!r} did not store the run's transitions within "
                                    f"{self.config.call_timeout_s:g} s")
            info, state = self.ray.get(self.learner.checkpoint.remote(),
                                       timeout=max(0.1, deadline - time.monotonic()))
        except Exception as err:  # noqa: BLE001 - the acting process saves its last good state instead
            self.link.send("save_failed", {"request": request, "error": _first_line(err)})
            self.link.set(L.SAVE_FAILED, request)
            return
        write_atomically(path, state)
        write_atomically(self.snapshot_file, state)
        info["stored"] = self.stored
        self.link.send("saved", {"request": request, "info": info})
        self.link.set(L.SAVE_DONE, request)

    def stop(self, timeout: float) -> None:
        """Sends what is left, leaves the learner; the last actor to leave shuts it down (it saves)."""
        deadline = time.monotonic() + timeout
        self.stopped = True
        if self.learner is None:
            return
        try:
            self.flush(deadline)
            remaining = self.ray.get(self.learner.detach.remote(self.actor_id),
                                     timeout=max(0.1, deadline - time.monotonic()))
            if remaining == 0:
                self.ray.get(self.learner.shutdown.remote(), timeout=max(1.0, deadline - time.monotonic()))
                self.ray.kill(self.learner, no_restart=True)
        except Exception as err:  # noqa: BLE001 - an unreachable learner: end it rather than leave it frozen
            self.link.send("warn", f"leaving the learner {self.name!r} failed ({_first_line(err)}); ending it")
            try:
                self.ray.kill(self.learner, no_restart=True)
            except Exception:  # noqa: BLE001 - the cluster itself may be gone
                pass
        self.link.set(L.STATE, L.STOPPED)

    def close(self) -> None:
        """Disconnects from Ray."""
        if self.connected:
            self.ray.shutdown()


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _cause(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    return str(cause) if cause is not None else _first_line(err)
