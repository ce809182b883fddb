"""Replay buffer in shared memory: the acting process writes, the learner process samples.

Images are stored once, as uint8 single frames in a frame ring. A transition holds the frame ids
of its observation and next observation (k ids each for k stacked frames), so consecutive
observations share frames and ``next_obs`` is never a second copy. A frame is reused only when
its pixels are equal to the incoming frame, so any frame-stacking convention of the env (newest
last, padded resets) stays correct; the usual "shift by one" stacking stores one frame per step.

Concurrency (one writer, any number of readers): transitions ``[lo, hi)`` are valid. Before the
writer overwrites a transition slot or a frame, it advances ``lo`` past every transition that uses
it; a reader copies its sample, then re-reads ``lo`` and resamples rows that fell below it. So a
reader never returns a half-overwritten transition and never blocks the writer.
"""
from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np

from sac.errors import ReplayBufferError
from communicators.shared_memory import SharedArrays

logger = logging.getLogger(__name__)
_LO, _HI, _FRAMES = 0, 1, 2  # header slots
_ROW_ARRAYS = ("obs_ids", "next_ids", "min_frame", "proprio", "next_proprio", "action", "reward",
               "terminated")


class Batch(NamedTuple):
    """A minibatch of transitions (numpy arrays, batch size B)."""

    image: np.ndarray  # (B, 3k, H, W) uint8
    proprioception: np.ndarray  # (B, P) float32
    action: np.ndarray  # (B, A) float32 in [-1, 1]
    reward: np.ndarray  # (B,) float32
    next_image: np.ndarray  # (B, 3k, H, W) uint8
    next_proprioception: np.ndarray  # (B, P) float32
    terminated: np.ndarray  # (B,) bool: true terminal state, no bootstrap


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


def replay_bytes(image_shape: tuple[int, int, int], proprio_dim: int, action_dim: int, capacity: int,
                 max_fraction_of_ram: float = 0.8) -> tuple[int, int]:
    """(bytes a :class:`SharedReplayBuffer` of these shapes needs, bytes it may use here), without
    allocating anything: what the buffer itself checks before it allocates."""
    c, h, w = (int(x) for x in image_shape)
    k = c // 3
    frame_capacity = capacity + capacity // 10 + 2 * k
    specs = SharedReplayBuffer._specs(k, (h, w), proprio_dim, action_dim, capacity, frame_capacity)
    return _nbytes(specs), int(available_shared_memory() * max_fraction_of_ram)


class SharedReplayBuffer:
    """Uniform replay of (image, proprioception, action, reward, next, terminated) transitions.

    Args:
        image_shape: (3 * k, H, W) uint8 channel-first stacked frames.
        proprio_dim: proprioception length P.
        action_dim: action length A.
        capacity: transitions kept.
        frame_capacity: frames kept; default ``capacity * 1.1 + 2k``. Each episode also stores its
            reset frames, so very short episodes need more; the oldest transitions whose frames
            are gone drop out (``len`` says how many are valid).
        max_fraction_of_ram: refuse if the buffer needs more than this share of the free shared
            memory and available RAM.

    Raises:
        ReplayBufferError: the buffer does not fit; the message gives its size and a capacity that fits.
    """

    def __init__(self, image_shape: tuple[int, int, int], proprio_dim: int, action_dim: int,
                 capacity: int, frame_capacity: int | None = None, max_fraction_of_ram: float = 0.8):
        c, h, w = (int(x) for x in image_shape)
        if c % 3 != 0 or min(c, h, w) < 1:
            raise ReplayBufferError(f"image_shape={tuple(image_shape)}: expected (3 * frames, H, W)")
        k = c // 3
        if capacity < 1:
            raise ReplayBufferError(f"capacity={capacity}: expected >= 1 transitions")
        frame_capacity = frame_capacity or capacity + capacity // 10 + 2 * k
        if frame_capacity < 3 * k:  # one transition may hold k reused + 2k new frames
            raise ReplayBufferError(f"frame_capacity={frame_capacity}: expected >= 3 * frames = {3 * k}")
        specs = self._specs(k, (h, w), proprio_dim, action_dim, capacity, frame_capacity)
        nbytes = _nbytes(specs)
        limit = int(available_shared_memory() * max_fraction_of_ram)
        per_transition = nbytes / capacity
        if nbytes > limit:
            raise ReplayBufferError(
                f"replay buffer of {capacity} transitions with {k}x3x{h}x{w} frames needs "
                f"{nbytes / 1e9:.2f} GB, but only {limit / 1e9:.2f} GB of shared memory/RAM may be used; "
                f"use --replay_buffer_capacity {int(limit / per_transition)} or smaller images")
        logger.info("replay buffer: %d transitions, %d frames of 3x%dx%d uint8: %.2f GB in shared memory",
                    capacity, frame_capacity, h, w, nbytes / 1e9)
        self._arrays = SharedArrays(specs, tag="replay")
        self._setup(self._arrays, (c, h, w), proprio_dim, action_dim, capacity, frame_capacity)

    @staticmethod
    def _specs(k, hw, p, a, n, f) -> dict:
        return {"header": ((8,), np.int64), "frames": ((f, 3, *hw), np.uint8),
                "obs_ids": ((n, k), np.int64), "next_ids": ((n, k), np.int64),
                "min_frame": ((n,), np.int64), "proprio": ((n, p), np.float32),
                "next_proprio": ((n, p), np.float32), "action": ((n, a), np.float32),
                "reward": ((n,), np.float32), "terminated": ((n,), np.bool_)}

    def _setup(self, arrays, image_shape, proprio_dim, action_dim, capacity, frame_capacity) -> None:
        self.image_shape, self.proprio_dim, self.action_dim = tuple(image_shape), proprio_dim, action_dim
        self.capacity, self.frame_capacity = capacity, frame_capacity
        self.frames_per_obs = image_shape[0] // 3
        self.nbytes = arrays.nbytes
        for name in ("header", "frames", *_ROW_ARRAYS):
            setattr(self, "_" + name, arrays[name])
        self._last_next_ids: np.ndarray | None = None  # writer-local: frames of the last next_obs

    def __getstate__(self) -> dict:
        return {"arrays": self._arrays, "shapes": (self.image_shape, self.proprio_dim, self.action_dim),
                "capacity": self.capacity, "frame_capacity": self.frame_capacity}

    def __setstate__(self, state: dict) -> None:
        self._arrays = state["arrays"]
        self._setup(self._arrays, *state["shapes"], state["capacity"], state["frame_capacity"])

    # ------------------------------------------------------------------ writing
    def add(self, obs: dict[str, np.ndarray], action: np.ndarray, reward: float,
            next_obs: dict[str, np.ndarray], terminated: bool) -> None:
        """Appends one transition. Only one process may write.

        Args:
            obs, next_obs: ``{"image": uint8 (3k, H, W), "proprioception": float32 (P,)}``.
            action: (A,) in [-1, 1].
            reward: scalar reward.
            terminated: true terminal state (not a time limit).
        """
        for key, o in (("obs", obs), ("next_obs", next_obs)):
            if o["image"].shape != self.image_shape or o["image"].dtype != np.uint8:
                raise ReplayBufferError(f"{key}['image'] has shape {o['image'].shape} dtype "
                                        f"{o['image'].dtype}, expected {self.image_shape} uint8")
        hdr = self._header
        new_frames: list[np.ndarray] = []
        obs_ids = self._frame_ids(obs["image"], new_frames, self._last_next_ids, whole=True)
        next_ids = self._frame_ids(next_obs["image"], new_frames, obs_ids, whole=False)
        t, first_new = int(hdr[_HI]), int(hdr[_FRAMES])
        if min(obs_ids.min(), next_ids.min()) < first_new + len(new_frames) - self.frame_capacity:
            # A reused frame is old enough to be overwritten by this very add (a camera that
            # repeated one frame for a long time): store this transition's frames afresh.
            new_frames = []
            obs_ids = self._frame_ids(obs["image"], new_frames, None, whole=True)
            next_ids = self._frame_ids(next_obs["image"], new_frames, obs_ids, whole=False)
        oldest_kept_frame = first_new + len(new_frames) - self.frame_capacity
        lo = int(hdr[_LO])
        while lo < t and (t - lo >= self.capacity or self._min_frame[lo % self.capacity] < oldest_kept_frame):
            lo += 1
        hdr[_LO] = lo  # published before anything is overwritten
        for i, frame in enumerate(new_frames):
            self._frames[(first_new + i) % self.frame_capacity] = frame
        row = t % self.capacity
        self._obs_ids[row], self._next_ids[row] = obs_ids, next_ids
        self._min_frame[row] = min(obs_ids.min(), next_ids.min())
        self._proprio[row], self._next_proprio[row] = obs["proprioception"], next_obs["proprioception"]
        self._action[row], self._reward[row], self._terminated[row] = action, reward, terminated
        hdr[_FRAMES] = first_new + len(new_frames)
        hdr[_HI] = t + 1
        self._last_next_ids = next_ids

    def _frame_ids(self, image: np.ndarray, new_frames: list, prev_ids: np.ndarray | None,
                   whole: bool) -> np.ndarray:
        """Frame ids for a stacked image, reusing stored frames with equal pixels.

        ``whole``: ``prev_ids`` may be this very observation (the previous next_obs); otherwise
        ``prev_ids`` is the previous observation and its frames are shifted by one.
        """
        k, first_new = self.frames_per_obs, int(self._header[_FRAMES])
        frames = image.reshape(k, 3, *image.shape[1:])  # (k, 3, H, W) view
        if whole and prev_ids is not None and all(
                np.array_equal(self._frames[i % self.frame_capacity], f) for i, f in zip(prev_ids, frames)):
            return prev_ids.copy()
        ids = np.empty(k, np.int64)
        for j in range(k):
            candidates = []
            if not whole and prev_ids is not None and j + 1 < k:
                candidates.append(prev_ids[j + 1])  # the usual stack shifted by one frame
            if j > 0:
                candidates.append(ids[j - 1])  # repeated frames, e.g. a stack padded at reset
            for cand in candidates:
                stored = (new_frames[cand - first_new] if cand >= first_new
                          else self._frames[cand % self.frame_capacity])
                if np.array_equal(stored, frames[j]):
                    ids[j] = cand
                    break
            else:
                ids[j] = first_new + len(new_frames)
                new_frames.append(frames[j])
        return ids

    # ----------------------------------------------------------------- sampling
    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int(self._header[_HI] - self._header[_LO])

    @property
    def num_frames_added(self) -> int:
        """Single frames stored since creation (one per step in a frame-stacking env)."""
        return int(self._header[_FRAMES])

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
        rows = idx % self.capacity
        b, (c, h, w) = len(idx), self.image_shape

        def images(ids: np.ndarray) -> np.ndarray:
            # (B, k) frame ids -> (B, k, 3, H, W) copy -> (B, 3k, H, W), stack order kept.
            return np.take(self._frames, (ids % self.frame_capacity).ravel(), axis=0).reshape(b, c, h, w)

        return Batch(images(self._obs_ids[rows]), self._proprio[rows], self._action[rows],
                     self._reward[rows], images(self._next_ids[rows]), self._next_proprio[rows],
                     self._terminated[rows])

    # -------------------------------------------------------------- checkpoints
    def save(self, path: str) -> None:
        """Writes the buffer to ``path`` (an .npz file). Call from the writing process, between adds.

        Only the filled part is written, so an early checkpoint of a big buffer stays small.
        """
        rows, frames = self._filled()
        with open(path, "wb") as f:
            np.savez(f, **{name: self._arrays[name][:rows] for name in _ROW_ARRAYS},
                     header=self._header, frames=self._frames[:frames], shapes=np.array(self._shape_key()))

    def load(self, path: str) -> None:
        """Restores a buffer saved by :meth:`save` into this one (same shapes and capacities).

        Raises:
            ReplayBufferError: the saved buffer has other shapes or capacities.
        """
        with np.load(path) as data:
            if data["shapes"].tolist() != self._shape_key():
                raise ReplayBufferError(
                    f"{path} holds a buffer with (C, H, W, P, A, capacity, frame_capacity) = "
                    f"{data['shapes'].tolist()}, this one is {self._shape_key()}; use the same image "
                    f"size and --replay_buffer_capacity")
            for name in _ROW_ARRAYS:
                self._arrays[name][:len(data[name])] = data[name]
            self._frames[:len(data["frames"])] = data["frames"]
            self._header[:] = data["header"]
        self._last_next_ids = None

    def _filled(self) -> tuple[int, int]:
        return (min(int(self._header[_HI]), self.capacity),
                min(int(self._header[_FRAMES]), self.frame_capacity))

    def _shape_key(self) -> list[int]:
        return [*self.image_shape, self.proprio_dim, self.action_dim, self.capacity, self.frame_capacity]

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory. Idempotent."""
        for name in ("header", "frames", *_ROW_ARRAYS):
            setattr(self, "_" + name, None)  # views must not outlive the mapping
        self._arrays.close()
