"""SharedReplayBuffer: exact transitions back, frames stored once, spawn processes, save/load."""
from __future__ import annotations

import multiprocessing
import re

import numpy as np
import pytest
from sac_fixtures import FRAMES, IMAGE_SHAPE, A, P, make_obs

from sac.errors import ReplayBufferError
from sac.replay_buffer import SharedReplayBuffer

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leaked_segments")]


def reset_obs(step: int) -> dict[str, np.ndarray]:
    """A reset observation: the stack padded with copies of its one frame."""
    frame = np.full((3, *IMAGE_SHAPE[1:]), step % 251, np.uint8)
    return {"image": np.concatenate([frame] * FRAMES), "proprioception": np.full(P, step, np.float32)}


def fill(buffer: SharedReplayBuffer, steps: int, episode_length: int = 10, start: int = 0) -> None:
    """Adds transitions s -> s + 1; action = (s, 1 if obs is a reset else 0), reward = s."""
    obs = None
    for s in range(start, start + steps):
        fresh = (s - start) % episode_length == 0
        if fresh:
            obs = reset_obs(s)
        action = np.array([s, float(fresh)], np.float32)
        done = (s - start) % episode_length == episode_length - 1
        buffer.add(obs, action, float(s), make_obs(s + 1), terminated=done)
        obs = make_obs(s + 1)


def assert_consistent(batch) -> None:
    """Every row's pixels, proprioception, reward and flags belong to the same step."""
    for i in range(len(batch.reward)):
        s, fresh = int(batch.action[i, 0]), bool(batch.action[i, 1])
        expected = reset_obs(s) if fresh else make_obs(s)
        np.testing.assert_array_equal(batch.image[i], expected["image"], err_msg=f"obs of step {s}")
        np.testing.assert_array_equal(batch.next_image[i], make_obs(s + 1)["image"])
        assert batch.proprioception[i, 0] == s and batch.next_proprioception[i, 0] == s + 1
        assert batch.reward[i] == s


def test_samples_return_exactly_the_transitions_added():
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=100)
    try:
        fill(buffer, 60)
        assert len(buffer) == 60
        batch = buffer.sample(256, np.random.default_rng(0))
        assert batch.image.shape == (256, *IMAGE_SHAPE) and batch.image.dtype == np.uint8
        assert batch.terminated.dtype == np.bool_
        assert_consistent(batch)
        assert set(batch.action[:, 0].astype(int)) == set(range(60))  # all rows reachable
        assert np.all(batch.terminated == (batch.action[:, 0] % 10 == 9))
    finally:
        buffer.close()


def test_each_step_stores_one_new_frame_and_a_reset_stores_one():
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=100)
    try:
        fill(buffer, 50, episode_length=10)
        # Per episode: the padded reset frame (1), then one new frame per step (10).
        assert buffer.num_frames_added == 5 * 11
    finally:
        buffer.close()


def test_wrapping_keeps_only_recent_valid_transitions():
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=30, frame_capacity=32)
    try:
        fill(buffer, 500, episode_length=7)
        assert 0 < len(buffer) <= 30
        batch = buffer.sample(500, np.random.default_rng(1))
        assert_consistent(batch)
        assert batch.action[:, 0].min() >= 500 - 30
    finally:
        buffer.close()


def test_a_frame_repeated_for_longer_than_the_frame_ring_is_never_served_overwritten():
    # A stalled camera repeats one frame (reused, never rewritten), then frames change again and
    # the ring wraps over the old frame while the stalled observation still refers to it.
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=20, frame_capacity=3 * FRAMES)
    try:
        stalled = reset_obs(0)
        for s in range(30):
            buffer.add(stalled, np.array([0, 1], np.float32), 0.0, stalled, False)
        buffer.add(stalled, np.array([0, 1], np.float32), 0.0, make_obs(1), False)
        for s in range(1, 40):
            buffer.add(make_obs(s), np.array([s, 0], np.float32), float(s), make_obs(s + 1), False)
            batch = buffer.sample(64, np.random.default_rng(s))
            keep = batch.action[:, 0] > 0
            assert_consistent(batch._replace(**{f: getattr(batch, f)[keep] for f in batch._fields}))
            assert np.all(batch.image[~keep] == 0)  # the stalled transitions: all frames of step 0
    finally:
        buffer.close()


def _sample_in_child(buffer: SharedReplayBuffer, rounds: int, queue) -> None:
    rng = np.random.default_rng(2)
    checked = 0
    try:
        while checked < rounds:
            if len(buffer) == 0:
                continue
            assert_consistent(buffer.sample(16, rng))
            checked += 1
        queue.put(("ok", checked))
    except Exception as exc:  # report, so the parent can fail with the reason
        queue.put(("error", repr(exc)))
    finally:
        buffer.close()


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_a_child_process_samples_consistent_transitions_while_the_parent_writes_and_wraps(method):
    ctx = multiprocessing.get_context(method)
    # Small rings, so the writer overwrites slots the reader is sampling, all the time.
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=40, frame_capacity=48)
    queue = ctx.Queue()
    child = ctx.Process(target=_sample_in_child, args=(buffer, 300, queue))
    try:
        child.start()
        start = 0
        while child.is_alive() and queue.empty():
            fill(buffer, 100, episode_length=9, start=start)
            start += 100
        status, detail = queue.get(timeout=30)
        assert status == "ok", detail
        assert start > 40  # the rings wrapped while the child sampled
    finally:
        child.join(10)
        buffer.close()
    assert child.exitcode == 0


def test_save_and_load_round_trip(tmp_path):
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=50)
    other = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=50)
    try:
        fill(buffer, 80)
        buffer.save(str(tmp_path / "replay.npz"))
        other.load(str(tmp_path / "replay.npz"))
        assert len(other) == len(buffer) and other.num_added == 80
        a, b = buffer.sample(64, np.random.default_rng(3)), other.sample(64, np.random.default_rng(3))
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        fill(other, 5, start=80)  # the restored buffer keeps accepting transitions
        assert_consistent(other.sample(64, np.random.default_rng(4)))
    finally:
        buffer.close()
        other.close()


def test_loading_a_buffer_of_another_size_is_refused(tmp_path):
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=50)
    other = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=60)
    try:
        buffer.save(str(tmp_path / "replay.npz"))
        with pytest.raises(ReplayBufferError, match="use the same image size and --replay_buffer_capacity"):
            other.load(str(tmp_path / "replay.npz"))
    finally:
        buffer.close()
        other.close()


def test_a_buffer_too_big_for_ram_is_refused_with_its_size():
    with pytest.raises(ReplayBufferError, match=re.escape("use --replay_buffer_capacity")) as err:
        SharedReplayBuffer((9, 480, 640), 21, 7, capacity=10_000_000)
    assert "GB" in str(err.value) and "10000000 transitions" in str(err.value)


def test_sampling_an_empty_buffer_and_adding_a_wrong_image_raise_clear_errors():
    buffer = SharedReplayBuffer(IMAGE_SHAPE, P, A, capacity=10)
    try:
        with pytest.raises(ReplayBufferError, match="empty replay buffer"):
            buffer.sample(4, np.random.default_rng(0))
        bad = make_obs(0)
        bad["image"] = bad["image"].astype(np.float32)
        with pytest.raises(ReplayBufferError, match=re.escape(f"expected {IMAGE_SHAPE} uint8")):
            buffer.add(bad, np.zeros(A, np.float32), 0.0, make_obs(1), False)
    finally:
        buffer.close()
