"""How the agent learns from what the acting loop collects: one small interface, several ways.

The training loop (sac/training/loop.py) holds an :class:`Updater` and never asks which one it is:

* :class:`SerialUpdater`: one update inline after every env step (the seed's SACv0). The update
  sits inside the action cycle, so a slow network stretches the cycle: the baseline.
* :class:`AsyncUpdater`: a learner process samples the shared replay buffer and updates
  continuously, capped at ``max_update_freq`` updates per env step; the actor pulls the newest
  weights between steps (the seed's SACv2).
* ``RayUpdater`` (sac/remote/updater.py): the learner is a Ray actor on another machine, fed
  through a bridge process; the acting process never calls Ray.

Every method runs in the acting process, called by the loop in this order: :meth:`Updater.start`
(after :meth:`Updater.restore` when resuming), then per step :meth:`Updater.add` and
:meth:`Updater.after_step`, per episode :meth:`Updater.stats`, at checkpoints
:meth:`Updater.write_checkpoint`, and :meth:`Updater.close` at the end however the run ends.
"""
from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np
import torch

from sac.agent import SACAgent
from sac.async_learner import STAT_KEYS, AsyncLearner, LearnerConfig
from sac.replay_buffer import SharedReplayBuffer

AGENT_FILE = "agent.pt"
REPLAY_FILE = "replay.npz"


def extra_names(stream_names: list[str]) -> tuple[str, ...]:
    """The timing stored with every transition (``batch.extras`` in a loss; delay-aware learning):

    * ``age/<stream>``: that sensor stream's age when the step's observation was read, s;
    * ``period``: the step's actual period, s (NaN for the first step after a reset);
    * ``weights_updates``: the update count of the weights that chose the action (the learner's
      count minus this is how stale the policy was).
    """
    return (*(f"age/{name}" for name in stream_names), "period", "weights_updates")


def transition_extras(timing: dict, stream_names: list[str], weights_updates: int) -> dict[str, float]:
    """The extras of one transition from the step's ``info["timing"]`` and the acting weights' update count."""
    return {**{f"age/{name}": float(timing["ages"][name]) for name in stream_names},
            "period": float(timing["period"]), "weights_updates": float(weights_updates)}


class Updater(abc.ABC):
    """The learning side of a run, as the acting loop sees it.

    Attributes:
        agent: the acting agent; its policy holds the weights the next action is chosen with.
    """

    agent: SACAgent
    mode: str = ""
    """How it learns, as summary.json says: "serial", "async", ..."""

    def summary(self) -> dict[str, Any]:
        """What summary.json records about learning (at least the mode)."""
        return {"mode": self.mode}

    @abc.abstractmethod
    def storage_line(self) -> str:
        """One line saying where transitions are kept and how much memory that takes."""

    @abc.abstractmethod
    def start(self) -> None:
        """Starts learning (a learner process, a remote actor); returns once it is ready."""

    @abc.abstractmethod
    def add(self, obs: dict[str, np.ndarray], action: np.ndarray, reward: float,
            next_obs: dict[str, np.ndarray], terminated: bool, extras: dict[str, float]) -> None:
        """Stores one transition with its timing extras (see :func:`transition_extras`). Never blocks
        the action cycle."""

    @abc.abstractmethod
    def after_step(self, env_step: int) -> None:
        """Called once per env step, after :meth:`add`, with the steps taken so far.

        Serial learning updates here; asynchronous learning checks the learner and pulls new weights.

        Raises:
            LearnerError: learning failed for good (no restart left); the run must stop and save.
        """

    @abc.abstractmethod
    def stats(self) -> dict[str, float]:
        """Means of the update statistics (``train/critic_loss``, ...) since the last call; {} if none."""

    @property
    @abc.abstractmethod
    def num_updates(self) -> int:
        """Gradient updates made so far (a resumed agent's included)."""

    @property
    @abc.abstractmethod
    def acting_updates(self) -> int:
        """The update count of the weights the actor chooses actions with now; ``num_updates``
        minus this is how stale they are."""

    @abc.abstractmethod
    def write_checkpoint(self, directory: str) -> None:
        """Writes the full agent state (``agent.pt``) and the transitions (``replay.npz``) into
        ``directory``. After a learner failure it writes the last good agent state."""

    @abc.abstractmethod
    def restore(self, checkpoint_dir: str) -> None:
        """Loads what :meth:`write_checkpoint` wrote; call before :meth:`start`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stops learning and frees its memory and processes. Idempotent."""


class _ReplayUpdater(Updater):
    """The two local updaters' shared part: the agent and a shared-memory replay buffer."""

    def __init__(self, agent: SACAgent, replay: SharedReplayBuffer) -> None:
        self.agent, self.replay = agent, replay

    def storage_line(self) -> str:
        return f"replay buffer: {self.replay.description}"

    def add(self, obs, action, reward, next_obs, terminated, extras) -> None:
        self.replay.add(obs, action, reward, next_obs, terminated, extras)

    def restore(self, checkpoint_dir: str) -> None:
        self.agent.load_state_dict(torch.load(os.path.join(checkpoint_dir, AGENT_FILE), weights_only=False))
        self.replay.load(os.path.join(checkpoint_dir, REPLAY_FILE))

    def _write_replay(self, directory: str) -> None:
        self.replay.save(os.path.join(directory, REPLAY_FILE))


class SerialUpdater(_ReplayUpdater):
    """One update inline after every env step past ``update_after`` (the seed's SACv0).

    Args:
        agent: the agent, which acts and learns.
        replay: its replay buffer.
        update_after: env steps of initial exploration before the first update.
    """

    mode = "serial"

    def __init__(self, agent: SACAgent, replay: SharedReplayBuffer, update_after: int) -> None:
        super().__init__(agent, replay)
        self.update_after = update_after
        self._sums: dict[str, list[float]] = {}

    def start(self) -> None:
        torch.set_num_threads(1)  # one core for the loop and its inline updates; the devices have the other

    def after_step(self, env_step: int) -> None:
        if env_step <= self.update_after or len(self.replay) < self.agent.config.batch_size:
            return
        info = self.agent.update(self.replay.sample(self.agent.config.batch_size, self.agent.np_rng))
        for key in STAT_KEYS:
            if key in info:
                total = self._sums.setdefault(key, [0.0, 0])
                total[0] += info[key]
                total[1] += 1

    def stats(self) -> dict[str, float]:
        means = {key: total / count for key, (total, count) in self._sums.items() if count}
        self._sums.clear()
        return means

    @property
    def num_updates(self) -> int:
        return self.agent.num_updates

    @property
    def acting_updates(self) -> int:
        return self.agent.num_updates  # it acts with the weights it just updated

    def write_checkpoint(self, directory: str) -> None:
        torch.save(self.agent.state_dict(), os.path.join(directory, AGENT_FILE))
        self._write_replay(directory)

    def close(self) -> None:
        self.replay.close()


class AsyncUpdater(_ReplayUpdater):
    """A learner process on the shared replay buffer (the seed's SACv2); see sac/async_learner.py.

    Args:
        agent: the acting agent; its full state seeds the learner.
        replay: the shared replay buffer.
        config: the learner process's settings.
    """

    mode = "async"

    def __init__(self, agent: SACAgent, replay: SharedReplayBuffer, config: LearnerConfig) -> None:
        super().__init__(agent, replay)
        self.config = config
        self.learner: AsyncLearner | None = None

    def start(self) -> None:
        # Built here, after restore(): the learner starts from the agent's full state.
        self.learner = AsyncLearner(self.agent, self.replay, self.config).start()
        self.learner.wait_ready()

    def after_step(self, env_step: int) -> None:
        self.learner.raise_if_failed()
        self.learner.set_env_step(env_step)
        self.learner.pull_weights(self.agent.policy)  # newest weights, if any; never waits

    def stats(self) -> dict[str, float]:
        return self.learner.stats() if self.learner is not None else {}

    @property
    def num_updates(self) -> int:
        return self.learner.num_updates if self.learner is not None else self.agent.num_updates

    @property
    def acting_updates(self) -> int:
        return self.learner.weights.pulled_updates if self.learner is not None else self.agent.num_updates

    def write_checkpoint(self, directory: str) -> None:
        path = os.path.join(directory, AGENT_FILE)
        if self.learner is None:
            torch.save(self.agent.state_dict(), path)
        else:
            self.learner.save_agent(path)  # the learner holds the optimizers; a dead one's last good state
        self._write_replay(directory)

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "learner_restarts": self.learner.restarts if self.learner is not None else 0}

    def close(self) -> None:
        if self.learner is not None:
            self.learner.stop()
        self.replay.close()
