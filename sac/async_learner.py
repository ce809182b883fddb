"""The asynchronous learner: a process that samples the shared replay buffer, updates the agent
continuously and publishes the policy's weights, while the acting process keeps its cycle.

Thread budget on a 2-core machine: the acting process runs torch with one thread (policy inference
is ~1 ms); the learner gets ``num_threads`` intra-op threads under a background scheduling policy
(``LearnerConfig.scheduler``: SCHED_IDLE by default, or SCHED_BATCH or SCHED_OTHER at a nice
increment), so it soaks up idle CPU but the action cycle and the device processes preempt it
whenever they wake. No privilege is needed to lower one's own policy. Measured on the shared
2-core machine (examples/benchmark_learner.py, seed shapes, three invocations under a load average
of 3-6 from other users): with two learner threads under SCHED_OTHER or SCHED_BATCH at nice +5,
13-33 % of the 40 ms acting periods overran by over 1 ms; under SCHED_IDLE 2-15 %, near the 2-11 %
of the acting loop with no learner in the same invocations. SCHED_IDLE yields to every other
process too, so on that busy machine it made 0.50-1.57 updates/s against 0.83-1.90. OpenMP threads wait
passively (``OMP_WAIT_POLICY=passive``), so a preempted learner thread does not make its partner
spin.

Failure: an exception in the learner sends its traceback to the parent and ends the process; the
actor keeps its last weights and :meth:`AsyncLearner.raise_if_failed` raises :class:`LearnerError`
with that traceback at the next step. A learner killed outright (no traceback) is reported by its
exit code. With ``LearnerConfig.max_restarts`` > 0, a failed learner is instead restarted (the
traceback goes to stderr) from the newest full agent state the parent holds: the one it was
started with, or the last one :meth:`AsyncLearner.save_agent` wrote. Updates made since then are
lost. The learner exits by itself when the parent dies.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from communicators.errors import ConfigError
from communicators.realtime import BACKGROUND_SCHEDULERS, run_in_background
from sac.checkpoint import state_bytes, write_atomically
from sac.errors import LearnerError
from sac.agent import SACAgent
from sac.replay_buffer import SharedReplayBuffer
from communicators.shared_memory import SharedArrays
from sac.weights import VersionedArray, WeightPublisher

STAT_KEYS = ("train/critic_loss", "train/actor_loss", "train/alpha_loss", "train/alpha",
             "train/entropy", "train/batch_reward", "train/q1")
_ENV_STEPS, _NUM_UPDATES, _STOP, _SAVE_DONE = range(4)  # control counters


class UpdateStats:
    """Running sums and counts of the update statistics (:data:`STAT_KEYS`), published by the
    learning side (any process) and read by the acting process as means since its previous read."""

    def __init__(self) -> None:
        self._array = VersionedArray(2 * len(STAT_KEYS), np.float64, tag="stats")
        self._scratch = np.zeros(2 * len(STAT_KEYS))
        self._last = np.zeros(2 * len(STAT_KEYS))
        self._version = 0

    def __getstate__(self) -> dict:
        return {"array": self._array}

    def __setstate__(self, state: dict) -> None:
        self._array = state["array"]
        self._scratch, self._last, self._version = np.zeros(2 * len(STAT_KEYS)), np.zeros(2 * len(STAT_KEYS)), 0

    def publish(self, sums: np.ndarray) -> None:
        """Publishes the sums (the first half) and counts (the second) of every key (learning side)."""
        self._array.publish(sums)

    def means(self) -> dict[str, float]:
        """Mean of each key over the updates since the previous call, or {} (acting process)."""
        version = self._array.read(self._scratch, newer_than=self._version)
        if version is None:
            return {}
        self._version = version
        delta = self._scratch - self._last
        self._last[:] = self._scratch
        k = len(STAT_KEYS)
        return {key: float(delta[i] / delta[k + i]) for i, key in enumerate(STAT_KEYS) if delta[k + i] > 0}

    def restart(self) -> None:
        """The publisher's sums start again from zero (a restarted learner); reading goes on from here."""
        self._last[:] = 0.0
        self._version = self._array.version

    def close(self) -> None:
        self._array.close()


@dataclass
class LearnerConfig:
    """How the learner process runs."""

    max_update_freq: float = 10.0
    """Cap: at most this many updates per env step, counted from ``update_after``."""
    update_after: int = 1000
    """Env steps (initial random exploration) before the first update."""
    num_threads: int = 2
    """torch intra-op threads in the learner process. Two by default: under SCHED_IDLE they take
    only CPU the action cycle and the devices leave, so the second one cannot delay them."""
    actor_threads: int = 1
    """torch intra-op threads set in the acting process by :meth:`AsyncLearner.start`."""
    scheduler: str = "idle"
    """Scheduling policy of the learner's threads, one of ``communicators.realtime.BACKGROUND_SCHEDULERS``:
    ``idle`` (SCHED_IDLE: only CPU time no normal thread wants; the default), ``batch`` (SCHED_BATCH)
    or ``other`` (SCHED_OTHER)."""
    nice: int = 5
    """Nice increment of the learner's threads (under ``batch`` and ``other``; ``idle`` ignores it),
    so the action cycle wins a contended core."""
    publish_every: int = 1
    """Publish the policy's weights every this many updates."""
    device: str = "cpu"
    """torch device of the learner's updates."""
    start_method: str = "spawn"
    """multiprocessing start method; spawn is safe with torch and GL contexts in the parent."""
    max_restarts: int = 0
    """Restart a failed learner at most this many times (from its last good agent state);
    0 raises :class:`LearnerError` at the first failure."""
    snapshot_every_s: float = 60.0
    """The learner writes its full agent state to a snapshot file this often (seconds), so a restart
    or the checkpoint after a failure loses at most this much learning; 0 disables snapshots."""

    def __post_init__(self) -> None:
        def bad(name: str, requirement: str) -> ConfigError:
            return ConfigError("LearnerConfig", name, getattr(self, name), requirement)

        for name in ("max_update_freq", "snapshot_every_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and value >= 0):
                raise bad(name, "must be a number >= 0")
        for name, low in (("update_after", 0), ("num_threads", 1), ("actor_threads", 1), ("publish_every", 1),
                          ("max_restarts", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(name, f"must be a whole number >= {low}")
        if isinstance(self.nice, bool) or not isinstance(self.nice, int) or not 0 <= self.nice <= 19:
            raise bad("nice", "must be a whole number in 0..19 (a nice increment)")
        if self.scheduler not in BACKGROUND_SCHEDULERS:
            raise bad("scheduler", f"must be one of {', '.join(BACKGROUND_SCHEDULERS)}")
        if self.start_method not in multiprocessing.get_all_start_methods():
            raise bad("start_method", f"must be one of {multiprocessing.get_all_start_methods()}")


class AsyncLearner:
    """Runs SAC updates in a child process on the shared replay buffer.

    Args:
        agent: the acting process's agent; its full state (networks, optimizers, counters, RNGs)
            seeds the learner, so a resumed agent resumes learning too.
        replay: the shared replay buffer the acting process writes.
        config: process settings.

    Example (the acting loop)::

        learner = AsyncLearner(agent, replay, LearnerConfig()).start()
        ...                                  # each step:
        learner.raise_if_failed()
        learner.set_env_step(step)
        learner.pull_weights(agent.policy)   # newest weights, if any; never blocks
        ...
        learner.stop()
    """

    def __init__(self, agent: SACAgent, replay: SharedReplayBuffer, config: LearnerConfig):
        self.config = config
        self.replay = replay
        ctx = multiprocessing.get_context(config.start_method)
        self.weights = WeightPublisher(agent.policy_state())
        self._control = SharedArrays({"counters": ((4,), np.int64)}, tag="learner")
        self._counters = self._control["counters"]
        self._counters[_NUM_UPDATES] = agent.num_updates
        self._stats = UpdateStats()
        self._cmd_recv, self._cmd_send = ctx.Pipe(duplex=False)
        self._err_recv, self._err_send = ctx.Pipe(duplex=False)
        self._ctx = ctx
        self._spec = (agent.observation_space, agent.action_dim, agent.config)
        self._restart_state = state_bytes(agent.state_dict())  # the newest full state the parent holds
        self._state_file: str | None = None
        fd, self._snapshot_file = tempfile.mkstemp(prefix="sac_learner_snapshot_", suffix=".pt")
        os.close(fd)
        os.unlink(self._snapshot_file)  # the learner creates it (by rename) at its first snapshot
        self._process = self._new_process()
        self._save_requests = 0
        self._stopping = False
        self._error: str | None = None
        self.restarts = 0
        """How many times the learner was restarted after a failure."""

    def _new_process(self) -> multiprocessing.Process:
        # What the learner starts from goes by file: spawn's start() writes its arguments into a
        # pipe, which blocks once they pass 64 KB until the child, busy importing torch, reads them;
        # a restart inside the action loop must not wait for that.
        self._remove_state_file()
        fd, self._state_file = tempfile.mkstemp(prefix="sac_learner_setup_", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((self._spec, self._restart_state), f)
        return self._ctx.Process(
            target=_learner_main, name="sac-learner", daemon=True,
            args=(self._state_file, self.replay, self.weights, self._control, self._stats,
                  self._cmd_recv, self._err_send, self.config, os.getpid(), self._snapshot_file))

    # --------------------------------------------------------------- lifecycle
    def start(self) -> AsyncLearner:
        """Starts the learner process and sets the acting process's torch threads."""
        torch.set_num_threads(self.config.actor_threads)
        # Passive OpenMP waits: read by the child's OpenMP runtime when it starts.
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        self._process.start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Blocks until the learner published its first weights (it imports torch: seconds)."""
        deadline = time.monotonic() + timeout
        while self.weights.version == 0:
            self.raise_if_failed()
            if time.monotonic() > deadline:
                raise LearnerError(f"learner process did not publish weights within {timeout} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the learner (after its current update), then frees its shared memory. Idempotent."""
        if self._control.closed:
            return
        self._stopping = True
        if self._process.pid is not None:
            self._counters[_STOP] = 1
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(2.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._remove_state_file()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._snapshot_file)
        for conn in (self._cmd_recv, self._cmd_send, self._err_recv, self._err_send):
            conn.close()
        self._counters = None  # a view into the segment about to be unmapped
        self._control.close()
        self._stats.close()
        self.weights.close()

    def __enter__(self) -> AsyncLearner:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------ acting-side calls
    def raise_if_failed(self) -> None:
        """Raises LearnerError (with the learner's traceback) if the learner process has died."""
        if self._error is None and not self._err_recv.closed and self._err_recv.poll():
            self._error = self._err_recv.recv()
        if self._error is None and not self._stopping and self._process.pid is not None \
                and not self._process.is_alive():
            self._error = f"learner process exited with code {self._process.exitcode} and no traceback"
        if self._error is not None and self.restarts < self.config.max_restarts:
            self._restart()
        if self._error is not None:
            raise LearnerError(f"the SAC learner process failed; the actor kept its last weights "
                               f"(version {self.weights.pulled_version}).\n{self._error}")

    def _restart(self) -> None:
        # Runs inside the action loop, so nothing here may wait for the new process.
        error, self._error = self._error, None
        self.restarts += 1
        self._process.join(0.5)  # it reported its traceback and is exiting
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._restart_state = self.last_good_state()
        state = torch.load(io.BytesIO(self._restart_state), weights_only=False)
        self._counters[_NUM_UPDATES] = state["num_updates"]
        # The new learner's running sums start from zero: the next stats() is measured from here.
        self._stats.restart()
        print(f"the SAC learner process failed; restarting it ({self.restarts} of "
              f"{self.config.max_restarts}) from the agent state of update {state['num_updates']}. "
              f"The actor keeps its weights until the new learner publishes.\n{error}",
              file=sys.stderr, flush=True)
        self._process = self._new_process()
        self._process.start()

    @property
    def pid(self) -> int | None:
        """The learner process's pid (a restarted learner has a new one; None before :meth:`start`)."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """The learner process runs."""
        return self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        """The learner process's exit code once it ended (None while it runs)."""
        return self._process.exitcode

    @property
    def failed(self) -> bool:
        """The learner failed and will not be restarted (its restarts are used up)."""
        return self._error is not None and self.restarts >= self.config.max_restarts

    def last_good_state(self) -> bytes:
        """The newest full agent state (``torch.save`` bytes) known to be complete: the learner's
        last snapshot, or what the learner was started with or last saved, whichever has more
        updates. After a failure, the updates since then are what is lost."""
        try:
            with open(self._snapshot_file, "rb") as f:
                snapshot = f.read()
        except FileNotFoundError:
            return self._restart_state
        def updates(blob: bytes) -> int:
            return int(torch.load(io.BytesIO(blob), weights_only=False)["num_updates"])
        return snapshot if updates(snapshot) > updates(self._restart_state) else self._restart_state

    def _remove_state_file(self) -> None:
        if self._state_file is not None:
            with contextlib.suppress(FileNotFoundError):  # the learner deletes it once loaded
                os.unlink(self._state_file)
            self._state_file = None

    def set_env_step(self, step: int) -> None:
        """Tells the learner how many env steps were taken (drives the update cap)."""
        self._counters[_ENV_STEPS] = step

    def pull_weights(self, policy: torch.nn.Module) -> int | None:
        """Loads the newest published weights into ``policy`` if newer ones exist. Never blocks."""
        return self.weights.pull(policy)

    @property
    def num_updates(self) -> int:
        """Updates the learner has made (including those of a resumed agent)."""
        return int(self._counters[_NUM_UPDATES])

    def stats(self) -> dict[str, float]:
        """Mean of each ``STAT_KEYS`` value over the updates since the previous call (or {})."""
        return self._stats.means()

    def save_agent(self, path: str, timeout: float = 60.0) -> None:
        """Asks the learner to write its full agent state (``torch.save``) to ``path``, atomically,
        and waits for it.

        Once the learner has failed for good (:attr:`failed`), writes :meth:`last_good_state`
        instead, so a run that stops on a learner failure still saves a whole agent.

        Raises:
            LearnerError: the learner died during the save or did not answer within ``timeout`` seconds.
        """
        if self.failed:
            write_atomically(path, self.last_good_state())
            return
        self.raise_if_failed()
        self._save_requests += 1
        restarts = self.restarts
        self._cmd_send.send(("save", path, self._save_requests))
        deadline = time.monotonic() + timeout
        while self._counters[_SAVE_DONE] < self._save_requests:
            self.raise_if_failed()
            if self.restarts != restarts:  # the request may have died with the old learner
                restarts = self.restarts
                self._cmd_send.send(("save", path, self._save_requests))
            if time.monotonic() > deadline:
                raise LearnerError(f"learner did not save its state to {path} within {timeout} s")
            time.sleep(0.005)
        with open(path, "rb") as f:  # the newest whole state: a restart or a failure checkpoint starts here
            self._restart_state = f.read()


def _learner_main(setup_file: str, replay: SharedReplayBuffer, weights: WeightPublisher,
                  control: SharedArrays, stats: UpdateStats, cmd_conn, err_conn,
                  config: LearnerConfig, parent_pid: int, snapshot_file: str) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when the learner stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # Before torch starts its intra-op threads, which inherit it. It also brings a learner started
        # from a real-time action loop (a restart) down from SCHED_FIFO.
        run_in_background(config.scheduler, config.nice)
        with open(setup_file, "rb") as f:  # the agent's spec and full state, written by the parent
            spec, state = pickle.load(f)
        os.unlink(setup_file)
        torch.set_num_threads(config.num_threads)
        counters = control["counters"]
        agent = SACAgent(*spec, device=config.device)
        agent.load_state_dict(torch.load(io.BytesIO(state), weights_only=False))
        weights.publish(agent.policy_state(), updates=agent.num_updates)
        sums = np.zeros(2 * len(STAT_KEYS))
        k = len(STAT_KEYS)
        last_snapshot = time.monotonic()
        while not counters[_STOP]:
            if os.getppid() != parent_pid:
                return  # the acting process died; nobody will stop us
            while cmd_conn.poll():
                _handle_command(agent, cmd_conn.recv(), counters)
            allowed = (counters[_ENV_STEPS] - config.update_after) * config.max_update_freq
            if agent.num_updates >= allowed or len(replay) < agent.config.batch_size:
                time.sleep(0.002)
                continue
            info = agent.update(replay.sample(agent.config.batch_size, agent.np_rng))
            counters[_NUM_UPDATES] = agent.num_updates
            if agent.num_updates % config.publish_every == 0:
                weights.publish(agent.policy_state(), updates=agent.num_updates)
            for i, key in enumerate(STAT_KEYS):
                if key in info:
                    sums[i] += info[key]
                    sums[k + i] += 1
            stats.publish(sums)
            if config.snapshot_every_s and time.monotonic() - last_snapshot > config.snapshot_every_s:
                write_atomically(snapshot_file, state_bytes(agent.state_dict()))
                last_snapshot = time.monotonic()
    except BaseException:
        err_conn.send(traceback.format_exc())
        raise SystemExit(1)


def _handle_command(agent: SACAgent, command: tuple, counters: np.ndarray) -> None:
    name, path, request = command
    if name != "save":
        raise LearnerError(f"learner got unknown command {name!r}")
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(agent.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a crash mid-save leaves the previous file intact
    counters[_SAVE_DONE] = request
