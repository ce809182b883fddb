"""Replay buffer in shared memory, built from the observation space: the acting process writes,
the learner process samples.

Layout (one array per observation key, as SB3's ``DictReplayBuffer``): each image key (see
sac/observation.py for which keys are images) has its own frame ring (sac/frame_ring.py: every
frame stored once, observations hold frame ids); each vector key has a float32 array for the
observation and one for the next observation. Per transition also: the action, the reward, the
terminal flag and ``extras``, a float32 vector whose names are fixed at construction.

Extras are the loop's per-step measurements, stored with the transition so a loss can use them
(delay-aware learning): e.g. ``extras=("age/camera", "age/robot", "period", "weights_version")``
for each stream's age at the step (s), the step's actual period (s) and the weights version
that chose the action. The names are fixed when the buffer is built, ``add`` takes a value for
each, and ``save``/``load`` keep them. They come back in ``Batch.extras`` as
``{name: (B,) float32}``: the SAC update (sac/agent.py) ignores them; a loss of your own reads
them, e.g. to down-weight transitions whose camera frame was old or whose action came from stale
weights:

>>> from gymnasium import spaces
>>> space = spaces.Dict({"range": spaces.Box(0.0, 2.0, (1,), np.float32)})
>>> replay = SharedReplayBuffer(space, action_dim=2, capacity=100, extras=("age/range", "period"))
>>> obs = {"range": np.array([0.5], np.float32)}
>>> replay.add(obs, np.zeros(2, np.float32), 1.0, obs, False, extras={"age/range": 0.012, "period": 0.041})
>>> batch = replay.sample(3, np.random.default_rng(0))
>>> batch.extras["period"]  # (B,) float32
array([0.041, 0.041, 0.041], dtype=float32)
>>> weight = np.exp(-batch.extras["age/range"] / 0.05)  # (B,): trust fresher readings more
>>> replay.close()

Concurrency (one writer, any number of readers): transitions ``[lo, hi)`` are valid. Before the
writer overwrites a transition slot or a frame of any image key, it advances ``lo`` past every
transition that uses it; a reader copies its sample, then re-reads ``lo`` and resamples rows that
fell below it. So a reader never returns a half-overwritten transition and never blocks the writer.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from gymnasium import spaces

from communicators.shared_memory import SharedArrays
from sac.errors import ReplayBufferError
from sac.frame_ring import FrameRing
from sac.observation import ObservationLayout

logger = logging.getLogger(__name__)
_LO, _HI, _FRAMES = 0, 1, 2  # header slots; _FRAMES + i: frames added to image key i


class Batch(NamedTuple):
    """A minibatch of transitions (numpy arrays, batch size B), SB3's ``DictReplayBufferSamples``
    with extras."""

    obs: dict[str, np.ndarray]
    """Key -> (B, 3k, H, W) uint8 for image keys, (B, *shape) float32 for vector keys."""
    action: np.ndarray
    """(B, A) float32 in [-1, 1]."""
    reward: np.ndarray
    """(B,) float32."""
    next_obs: dict[str, np.ndarray]
    """Same keys and shapes as ``obs``."""
    terminated: np.ndarray
    """(B,) bool: true terminal state, no bootstrap (a time limit is not one)."""
    extras: dict[str, np.ndarray]
    """Extra name -> (B,) float32 (see the module docstring); empty without extras."""


def available_shared_memory() -> int:
    """Bytes that a new shared-memory segment can take: free /dev/shm and available RAM."""
    stat = os.statvfs("/dev/shm")
    limit = stat.f_bavail * stat.f_frsize
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                limit = min(limit, int(line.split()[1]) * 1024)
    return limit


def _nbytes(specs: dict) -> int:
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in specs.values())


def _plan(observation_space: spaces.Dict, action_dim: int, capacity: int, frame_capacity: int | None,
          extras: tuple[str, ...]) -> tuple[ObservationLayout, dict[str, int], dict, int]:
    """(layout, frame capacity per image key, array specs, bytes) of a buffer; allocates nothing."""
    try:
        layout = ObservationLayout.from_space(observation_space)
    except ValueError as err:
        raise ReplayBufferError(str(err)) from None
    if capacity < 1:
        raise ReplayBufferError(f"capacity={capacity}: expected >= 1 transitions")
    if len(set(extras)) != len(extras):
        raise ReplayBufferError(f"extras={list(extras)}: names must be distinct")
    frame_capacities = {}
    for key, (c, _, _) in layout.images.items():
        k = c // 3
        frame_capacities[key] = capacity + capacity // 10 + 2 * k if frame_capacity is None else int(frame_capacity)
        if frame_capacities[key] < 3 * k:  # one transition may hold k reused + 2k new frames
            raise ReplayBufferError(f"frame_capacity={frame_capacity}: expected >= 3 * frames = {3 * k} "
                                    f"for image key {key!r}")
    specs = _specs(layout, int(action_dim), capacity, frame_capacities, len(extras))
    return layout, frame_capacities, specs, _nbytes(specs)


def replay_bytes(observation_space: spaces.Dict, action_dim: int, capacity: int, extras: Sequence[str] = (),
                 max_fraction_of_ram: float = 0.8) -> tuple[int, int]:
    """(bytes a :class:`SharedReplayBuffer` of this space needs, bytes it may use here), without
    allocating anything: what the buffer itself checks before it allocates."""
    _, _, _, nbytes = _plan(observation_space, action_dim, capacity, None, tuple(str(e) for e in extras))
    return nbytes, int(available_shared_memory() * max_fraction_of_ram)


class SharedReplayBuffer:
    """Uniform replay of (obs, action, reward, next_obs, terminated, extras) transitions.

    Args:
        observation_space: the env's ``gymnasium.spaces.Dict``; image and vector keys as in
            sac/observation.py.
        action_dim: action length A.
        capacity: transitions kept.
        frame_capacity: frames kept per image key; default ``capacity * 1.1 + 2k`` for a key of k
            stacked frames. Each episode also stores its reset frames, so very short episodes need
            more; the oldest transitions whose frames are gone drop out (``len`` says how many are
            valid).
        extras: names of the per-transition extras (see the module docstring); ``add`` then needs
            a value for each.
        max_fraction_of_ram: refuse if the buffer needs more than this share of the free shared
            memory and available RAM.
        private: only this process's threads use the buffer (the remote learner): its segment is
            removed from /dev/shm at once, so a killed process leaves nothing behind.

    Raises:
        ReplayBufferError: the space has a key that cannot be stored, or the buffer does not fit
            (the message gives its size and a capacity that fits).
    """

    def __init__(self, observation_space: spaces.Dict, action_dim: int, capacity: int,
                 frame_capacity: int | None = None, extras: Sequence[str] = (),
                 max_fraction_of_ram: float = 0.8, private: bool = False):
        extras = tuple(str(e) for e in extras)
        layout, frame_capacities, specs, nbytes = _plan(observation_space, action_dim, capacity, frame_capacity,
                                                        extras)
        limit = int(available_shared_memory() * max_fraction_of_ram)
        contents = ", ".join([*(f"{key}: {frame_capacities[key]} frames of 3x{h}x{w} uint8"
                                for key, (_, h, w) in layout.images.items()),
                              *(f"{key}: float32 {shape}" for key, shape in layout.vectors.items())])
        if nbytes > limit:
            raise ReplayBufferError(
                f"replay buffer of {capacity} transitions ({contents}) needs {nbytes / 1e9:.2f} GB, but only "
                f"{limit / 1e9:.2f} GB of shared memory/RAM may be used; use --replay_buffer_capacity "
                f"{int(limit / (nbytes / capacity))} or smaller images")
        self.description = f"{capacity} transitions ({contents}): {nbytes / 1e9:.2f} GB of shared memory"
        """One line for the console: capacity, each key's storage, size in GB."""
        logger.info("replay buffer: %s", self.description)
        self._arrays = SharedArrays(specs, tag="replay", private=private)
        self._setup(layout, int(action_dim), capacity, frame_capacities, extras)

    def _setup(self, layout: ObservationLayout, action_dim: int, capacity: int,
               frame_capacities: dict[str, int], extras: tuple[str, ...]) -> None:
        self.layout, self.action_dim, self.capacity = layout, action_dim, capacity
        self.frame_capacities = dict(frame_capacities)
        """Image key -> frames its ring keeps."""
        self.extras = extras
        self.nbytes = self._arrays.nbytes
        a = self._arrays
        self._header = a["header"]
        self._rings = {key: FrameRing(a[f"frames/{key}"], c // 3) for key, (c, _, _) in layout.images.items()}
        self._rows = {name: a[name] for name in _row_names(layout)}
        self._last_next_ids: dict[str, np.ndarray] | None = None  # writer-local: frames of the last next_obs

    def __getstate__(self) -> dict:
        return {"arrays": self._arrays, "layout": self.layout, "action_dim": self.action_dim,
                "capacity": self.capacity, "frame_capacities": self.frame_capacities, "extras": self.extras,
                "description": self.description}

    def __setstate__(self, state: dict) -> None:
        self._arrays, self.description = state["arrays"], state["description"]
        self._setup(state["layout"], state["action_dim"], state["capacity"], state["frame_capacities"],
                    state["extras"])

    # ------------------------------------------------------------------ writing
    def add(self, obs: Mapping[str, np.ndarray], action: np.ndarray, reward: float,
            next_obs: Mapping[str, np.ndarray], terminated: bool,
            extras: Mapping[str, float] | None = None) -> None:
        """Appends one transition. Only one process may write.

        Args:
            obs, next_obs: one value per key of the observation space (images uint8 (3k, H, W)).
            action: (A,) in [-1, 1].
            reward: scalar reward.
            terminated: true terminal state (not a time limit).
            extras: ``{name: value}`` for exactly the names given at construction.
        """
        try:
            self.layout.check(obs, "obs")
            self.layout.check(next_obs, "next_obs")
        except ValueError as err:
            raise ReplayBufferError(str(err)) from None
        extra_row = self._extra_row(extras)
        hdr, t = self._header, int(self._header[_HI])
        staged, oldest_kept = {}, {}
        for i, (key, ring) in enumerate(self._rings.items()):
            first_new = int(hdr[_FRAMES + i])
            last = None if self._last_next_ids is None else self._last_next_ids[key]
            staged[key] = ring.stage(obs[key], next_obs[key], last, first_new)
            oldest_kept[key] = first_new + len(staged[key][2]) - ring.capacity
        lo, rows = int(hdr[_LO]), self._rows
        while lo < t and (t - lo >= self.capacity or any(
                rows[f"min_frame/{key}"][lo % self.capacity] < oldest for key, oldest in oldest_kept.items())):
            lo += 1
        hdr[_LO] = lo  # published before anything is overwritten
        row = t % self.capacity
        for i, (key, ring) in enumerate(self._rings.items()):
            obs_ids, next_ids, new_frames = staged[key]
            ring.write(new_frames, int(hdr[_FRAMES + i]))
            rows[f"obs_ids/{key}"][row], rows[f"next_ids/{key}"][row] = obs_ids, next_ids
            rows[f"min_frame/{key}"][row] = min(obs_ids.min(), next_ids.min())
        for key in self.layout.vectors:
            rows[f"obs/{key}"][row], rows[f"next_obs/{key}"][row] = obs[key], next_obs[key]
        rows["action"][row], rows["reward"][row], rows["terminated"][row] = action, reward, terminated
        rows["extras"][row] = extra_row
        for i, key in enumerate(self._rings):
            hdr[_FRAMES + i] += len(staged[key][2])
        hdr[_HI] = t + 1
        self._last_next_ids = {key: s[1] for key, s in staged.items()}

    def _extra_row(self, extras: Mapping[str, float] | None) -> list[float]:
        given = dict(extras or {})
        if given.keys() != set(self.extras):
            raise ReplayBufferError(f"extras {sorted(given)} given, this buffer stores {list(self.extras)}; "
                                    f"pass a value for each name given at construction, and no other")
        return [given[name] for name in self.extras]

    # ----------------------------------------------------------------- sampling
    @property
    def segment_name(self) -> str:
        """Its shared-memory segment's name (in /dev/shm)."""
        return self._arrays.name

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int(self._header[_HI] - self._header[_LO])

    @property
    def num_frames_added(self) -> dict[str, int]:
        """Image key -> single frames stored since creation (one per step in a frame-stacking env)."""
        return {key: int(self._header[_FRAMES + i]) for i, key in enumerate(self._rings)}

    @property
    def num_added(self) -> int:
        """Transitions added since creation (or restored by :meth:`load`)."""
        return int(self._header[_HI])

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniformly samples ``batch_size`` valid transitions (with replacement). Never blocks.

        Raises:
            ReplayBufferError: the buffer is empty.
        """
        lo, hi = self._valid_range()
        idx = rng.integers(lo, hi, batch_size)
        batch = self._gather(idx)
        while True:
            # Rows the writer may have overwritten while we copied are resampled from what is left.
            stale = np.flatnonzero(idx < int(self._header[_LO]))
            if stale.size == 0:
                return batch
            lo, hi = self._valid_range()
            idx[stale] = rng.integers(lo, hi, stale.size)
            for field, part in zip(batch, self._gather(idx[stale])):
                if isinstance(field, dict):  # obs, next_obs, extras: one array per key
                    for name in field:
                        field[name][stale] = part[name]
                else:
                    field[stale] = part

    def _valid_range(self) -> tuple[int, int]:
        while True:
            hi = int(self._header[_HI])  # hi first: every row below it is complete
            lo = int(self._header[_LO])
            if hi == 0:
                raise ReplayBufferError("cannot sample from an empty replay buffer; add transitions first")
            if lo < hi:
                return lo, hi
            # lo == hi only inside an add that evicts every row; the new row lands in microseconds.

    def _gather(self, idx: np.ndarray) -> Batch:
        rows, r = idx % self.capacity, self._rows
        obs, next_obs = {}, {}
        for key, ring in self._rings.items():
            obs[key] = ring.gather(r[f"obs_ids/{key}"][rows])  # (B, 3k, H, W)
            next_obs[key] = ring.gather(r[f"next_ids/{key}"][rows])
        for key in self.layout.vectors:
            obs[key], next_obs[key] = r[f"obs/{key}"][rows], r[f"next_obs/{key}"][rows]  # (B, *shape)
        extras = r["extras"][rows]  # (B, E)
        return Batch(obs, r["action"][rows], r["reward"][rows], next_obs, r["terminated"][rows],
                     {name: extras[:, i] for i, name in enumerate(self.extras)})

    # -------------------------------------------------------------- checkpoints
    def save(self, path: str) -> None:
        """Writes the buffer to ``path`` (an .npz file). Call from the writing process, between adds.

        Only the filled part is written, so an early checkpoint of a big buffer stays small.
        """
        rows = min(int(self._header[_HI]), self.capacity)
        frames = {f"frames/{key}": ring.frames[:min(n, ring.capacity)]
                  for (key, ring), n in zip(self._rings.items(), self.num_frames_added.values())}
        with open(path, "wb") as f:
            np.savez(f, **{name: a[:rows] for name, a in self._rows.items()}, **frames,
                     header=self._header, layout=np.array(json.dumps(self._signature())))

    def load(self, path: str) -> None:
        """Restores a buffer saved by :meth:`save` into this one (same keys, shapes and capacities).

        Raises:
            ReplayBufferError: the saved buffer has other keys, shapes, extras or capacities;
                the message names each difference.
        """
        with np.load(path) as data:
            if "layout" not in data:
                raise ReplayBufferError(f"{path} is a replay buffer from before observation keys were "
                                        f"stored (it has no 'layout'); it cannot be loaded into this one")
            theirs = json.loads(str(data["layout"]))
            problems = self._signature_differences(theirs)
            if problems:
                raise ReplayBufferError(f"{path} holds another replay buffer: {'; '.join(problems)}; build "
                                        f"the buffer with the same observation space, extras and "
                                        f"--replay_buffer_capacity")
            for name, array in self._rows.items():
                array[:len(data[name])] = data[name]
            for key, ring in self._rings.items():
                saved = data[f"frames/{key}"]
                ring.frames[:len(saved)] = saved
            self._header[:] = data["header"]
        self._last_next_ids = None

    def _signature(self) -> dict:
        return {"observations": self.layout.describe(), "action_dim": self.action_dim,
                "capacity": self.capacity, "frame_capacity": self.frame_capacities, "extras": list(self.extras)}

    def _signature_differences(self, theirs: dict) -> list[str]:
        problems = self.layout.differences(theirs["observations"])
        mine = self._signature()
        for name in ("action_dim", "capacity", "frame_capacity", "extras"):
            if theirs[name] != mine[name]:
                problems.append(f"{name} {theirs[name]} there, {mine[name]} here")
        return problems

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory. Idempotent."""
        self._header = None  # views must not outlive the mapping
        self._rings, self._rows = {}, {}
        self._arrays.close()


def _row_names(layout: ObservationLayout) -> list[str]:
    """Per-transition arrays (everything but the header and the frame rings)."""
    names = [f"{kind}/{key}" for key in layout.images for kind in ("obs_ids", "next_ids", "min_frame")]
    names += [f"{kind}/{key}" for key in layout.vectors for kind in ("obs", "next_obs")]
    return [*names, "action", "reward", "terminated", "extras"]


def _specs(layout: ObservationLayout, action_dim: int, n: int, frame_capacities: dict[str, int],
           num_extras: int) -> dict:
    specs: dict = {"header": ((max(8, _FRAMES + len(layout.images)),), np.int64)}
    for key, (c, h, w) in layout.images.items():
        k = c // 3
        specs[f"frames/{key}"] = ((frame_capacities[key], 3, h, w), np.uint8)
        specs[f"obs_ids/{key}"] = ((n, k), np.int64)
        specs[f"next_ids/{key}"] = ((n, k), np.int64)
        specs[f"min_frame/{key}"] = ((n,), np.int64)
    for key, shape in layout.vectors.items():
        specs[f"obs/{key}"] = ((n, *shape), np.float32)
        specs[f"next_obs/{key}"] = ((n, *shape), np.float32)
    specs.update(action=((n, action_dim), np.float32), reward=((n,), np.float32),
                 terminated=((n,), np.bool_), extras=((n, num_extras), np.float32))
    return specs
