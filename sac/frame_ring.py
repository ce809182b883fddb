"""The frames of one image key, each stored once in a ring: the replay buffer's de-duplication.

A stacked observation (3k, H, W) is k single RGB frames. A transition holds the frame ids of its
observation and of its next observation (k ids each), so consecutive observations share frames
and ``next_obs`` is never a second copy. A frame is reused only when its pixels equal the
incoming frame, so any frame-stacking convention of the env (newest last, padded resets, a slow
camera repeating frames) stays correct; the usual "shift by one" stacking stores one frame per
step, and a camera slower than the step stores one frame per camera frame. Frame ids count up
forever; frame ``i`` lives in slot ``i % capacity``.

Only the writing process calls :meth:`FrameRing.stage` and :meth:`FrameRing.write`; the replay
buffer (sac/replay_buffer.py) keeps the lo/hi protocol that makes :meth:`FrameRing.gather` safe
for readers.
"""
from __future__ import annotations

import numpy as np


class FrameRing:
    """Single frames of one image key in a shared ring.

    Args:
        frames: the ring, (capacity, 3, H, W) uint8 (shared memory).
        frames_per_obs: k, stacked frames per observation.
    """

    def __init__(self, frames: np.ndarray, frames_per_obs: int):
        self.frames = frames
        self.capacity = int(frames.shape[0])
        self.k = int(frames_per_obs)
        self.obs_shape = (3 * self.k, *frames.shape[2:])

    def stage(self, image: np.ndarray, next_image: np.ndarray, last_next_ids: np.ndarray | None,
              first_new: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Frame ids of one transition, reusing stored frames; nothing is written yet.

        Args:
            image, next_image: (3k, H, W) uint8 observation and next observation.
            last_next_ids: the previous transition's next-observation ids (usually this very
                observation), or None after a load.
            first_new: the id the first new frame will get (frames added so far).

        Returns:
            (obs ids (k,), next ids (k,), new frames to write from ``first_new`` on).
        """
        new_frames: list[np.ndarray] = []
        obs_ids = self._frame_ids(image, new_frames, last_next_ids, True, first_new)
        next_ids = self._frame_ids(next_image, new_frames, obs_ids, False, first_new)
        if min(obs_ids.min(), next_ids.min()) < first_new + len(new_frames) - self.capacity:
            # A reused frame is old enough to be overwritten by this very add (a camera that
            # repeated one frame for a long time): store this transition's frames afresh.
            new_frames = []
            obs_ids = self._frame_ids(image, new_frames, None, True, first_new)
            next_ids = self._frame_ids(next_image, new_frames, obs_ids, False, first_new)
        return obs_ids, next_ids, new_frames

    def write(self, new_frames: list[np.ndarray], first_new: int) -> None:
        """Stores staged frames; call only after readers were told which transitions they evict."""
        for i, frame in enumerate(new_frames):
            self.frames[(first_new + i) % self.capacity] = frame

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """(B, k) frame ids -> (B, 3k, H, W) uint8 copy, stack order kept."""
        b = len(ids)
        # (B*k, 3, H, W) copy -> (B, 3k, H, W)
        return np.take(self.frames, (ids % self.capacity).ravel(), axis=0).reshape(b, *self.obs_shape)

    def _frame_ids(self, image: np.ndarray, new_frames: list, prev_ids: np.ndarray | None, whole: bool,
                   first_new: int) -> np.ndarray:
        """Frame ids for a stacked image, reusing stored frames with equal pixels.

        ``whole``: ``prev_ids`` may be this very observation (the previous next_obs); otherwise
        ``prev_ids`` is the previous observation and its frames are shifted by one.
        """
        k = self.k
        frames = image.reshape(k, 3, *image.shape[1:])  # (k, 3, H, W) view
        if whole and prev_ids is not None and all(
                np.array_equal(self.frames[i % self.capacity], f) for i, f in zip(prev_ids, frames)):
            return prev_ids.copy()
        ids = np.empty(k, np.int64)
        for j in range(k):
            candidates = []
            if not whole and prev_ids is not None:
                if j + 1 < k:
                    candidates.append(prev_ids[j + 1])  # the usual stack shifted by one frame
                elif k == 1:
                    candidates.append(prev_ids[0])  # a single-frame camera that did not tick this step
            if j > 0:
                candidates.append(ids[j - 1])  # repeated frames, e.g. a stack padded at reset
            for cand in candidates:
                stored = (new_frames[cand - first_new] if cand >= first_new
                          else self.frames[cand % self.capacity])
                if np.array_equal(stored, frames[j]):
                    ids[j] = cand
                    break
            else:
                ids[j] = first_new + len(new_frames)
                new_frames.append(frames[j])
        return ids
