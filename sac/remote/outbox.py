"""The outbox: transitions on their way from the action cycle to the bridge, in shared memory.

One writer (the acting process, :meth:`TransitionOutbox.put`) and one reader (the bridge process,
:meth:`TransitionOutbox.take`): a bounded ring of transition slots with two counters, ``written``
(advanced by the writer after it filled a slot) and ``taken`` (advanced by the reader after it
copied slots out). The writer never waits: when the ring is full (the bridge is gone or too slow)
the new transition is dropped and counted, and the run goes on. Each counter has one writer, and
x86-64 makes stores visible in program order (see sac/weights.py), so a slot is complete before
the reader sees ``written`` pass it.

A slot holds one array per observation key for ``obs`` and for ``next_obs`` (built from the
observation ``Dict`` space, so a new sensor is a new key), the action, the reward,
``terminated`` and one float per named extra (the transition's timing, see
:func:`sac.training.updaters.extra_names`). The writer also posts its env step, which the learner's update cap counts.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from communicators.shared_memory import SharedArrays

_WRITTEN, _TAKEN, _DROPPED, _ENV_STEP = range(4)  # header counters


def observation_specs(observation_space: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of a gymnasium ``Dict`` of ``Box`` spaces."""
    return {key: (tuple(space.shape), np.dtype(space.dtype)) for key, space in observation_space.spaces.items()}


class TransitionOutbox:
    """A bounded single-writer, single-reader queue of transitions in shared memory.

    Args:
        observation_space: the env's observation space (a gymnasium ``Dict`` of ``Box``).
        action_dim: action length.
        capacity: transitions it holds before new ones are dropped.
        extras: names of the per-transition floats stored beside each transition.

    Example:
        >>> from gymnasium import spaces
        >>> space = spaces.Dict({"proprioception": spaces.Box(-1, 1, (3,), np.float32)})
        >>> outbox = TransitionOutbox(space, action_dim=2, capacity=2, extras=("period",))
        >>> obs = {"proprioception": np.zeros(3, np.float32)}
        >>> [outbox.put(obs, np.zeros(2, np.float32), 1.0, obs, False, {"period": 0.04}) for _ in range(3)]
        [True, True, False]
        >>> first, batch = outbox.take(10)
        >>> first, len(batch["reward"]), outbox.dropped
        (0, 2, 1)
        >>> outbox.close()
    """

    def __init__(self, observation_space: Any, action_dim: int, capacity: int, extras: tuple[str, ...] = ()) -> None:
        self.keys, self.extras = list(observation_space.spaces), tuple(extras)
        self.capacity = int(capacity)
        specs: dict[str, tuple] = {"header": ((4,), np.int64)}
        for key, (shape, dtype) in observation_specs(observation_space).items():
            specs[f"obs/{key}"] = ((self.capacity, *shape), dtype)
            specs[f"next_obs/{key}"] = ((self.capacity, *shape), dtype)
        specs.update({"action": ((self.capacity, int(action_dim)), np.float32),
                      "reward": ((self.capacity,), np.float32), "terminated": ((self.capacity,), np.bool_)})
        specs.update({f"extra/{name}": ((self.capacity,), np.float32) for name in self.extras})
        self._arrays = SharedArrays(specs, tag="outbox")
        self._fields = [name for name in specs if name != "header"]

    @property
    def nbytes(self) -> int:
        """Bytes of shared memory the outbox takes."""
        return self._arrays.nbytes

    # ------------------------------------------------------------ acting process
    def put(self, obs: dict[str, np.ndarray], action: np.ndarray, reward: float, next_obs: dict[str, np.ndarray],
            terminated: bool, extras: dict[str, float] | None = None) -> bool:
        """Appends one transition; never waits. Returns False (and counts it) if the outbox is full."""
        header = self._arrays["header"]
        written = int(header[_WRITTEN])
        if written - int(header[_TAKEN]) >= self.capacity:
            header[_DROPPED] += 1
            return False
        row = written % self.capacity
        for key in self.keys:
            self._arrays[f"obs/{key}"][row] = obs[key]
            self._arrays[f"next_obs/{key}"][row] = next_obs[key]
        self._arrays["action"][row] = action
        self._arrays["reward"][row] = reward
        self._arrays["terminated"][row] = terminated
        for name in self.extras:
            self._arrays[f"extra/{name}"][row] = extras[name]
        header[_WRITTEN] = written + 1  # published after the slot is complete
        return True

    def set_env_step(self, step: int) -> None:
        """Posts the env steps taken so far (the learner's update cap counts them)."""
        self._arrays["header"][_ENV_STEP] = step

    # ------------------------------------------------------------ bridge process
    def take(self, max_count: int) -> tuple[int, dict[str, np.ndarray]] | None:
        """Copies out up to ``max_count`` of the oldest transitions and frees their slots.

        Returns:
            (index of the first transition since the outbox was made, ``{field: array}`` with
            fields ``obs/<key>``, ``next_obs/<key>``, ``action``, ``reward``, ``terminated``,
            ``extra/<name>``), or
            None if the outbox is empty.
        """
        header = self._arrays["header"]
        taken, written = int(header[_TAKEN]), int(header[_WRITTEN])
        count = min(written - taken, int(max_count))
        if count <= 0:
            return None
        rows = np.arange(taken, taken + count) % self.capacity
        batch = {name: self._arrays[name][rows] for name in self._fields}  # fancy indexing copies
        header[_TAKEN] = taken + count  # the slots may be reused from here on
        return taken, batch

    @property
    def env_step(self) -> int:
        """The env steps the writer last posted."""
        return int(self._arrays["header"][_ENV_STEP])

    @property
    def written(self) -> int:
        """Transitions put in so far (not counting dropped ones)."""
        return int(self._arrays["header"][_WRITTEN])

    @property
    def pending(self) -> int:
        """Transitions put in and not yet taken."""
        header = self._arrays["header"]
        return int(header[_WRITTEN] - header[_TAKEN])

    @property
    def dropped(self) -> int:
        """Transitions dropped because the outbox was full."""
        return int(self._arrays["header"][_DROPPED])

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory. Idempotent."""
        self._arrays.close()


def batch_transitions(batch: dict[str, np.ndarray], keys: list[str], extras: tuple[str, ...] = ()):
    """The transitions of a :meth:`TransitionOutbox.take` batch, one at a time, as
    ``(obs, action, reward, next_obs, terminated, extras)`` (the arguments of a replay buffer's ``add``)."""
    for i in range(len(batch["reward"])):
        yield ({key: batch[f"obs/{key}"][i] for key in keys}, batch["action"][i], float(batch["reward"][i]),
               {key: batch[f"next_obs/{key}"][i] for key in keys}, bool(batch["terminated"][i]),
               {name: float(batch[f"extra/{name}"][i]) for name in extras})
