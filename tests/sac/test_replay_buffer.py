"""SharedReplayBuffer: exact transitions back, frames stored once per image key, vector keys and
extras, spawn processes sampling while the parent writes, save/load and its refusals."""
from __future__ import annotations

import doctest
import multiprocessing
import re
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from sac_fixtures import (FRAMES, IMAGE_SHAPE, MULTI_SPACE, SCENE_SHAPE, SPACE, A, P, image_space, make_multi_obs,
                          make_obs, vector_space)

from sac.errors import ReplayBufferError
from sac import replay_buffer
from sac.replay_buffer import SharedReplayBuffer
from tests.support.processes import SHM_DIR, Script, pid_alive, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leaked_segments")]
EXTRAS = ("age/camera", "period", "weights_version")


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
        np.testing.assert_array_equal(batch.obs["image"][i], expected["image"], err_msg=f"obs of step {s}")
        np.testing.assert_array_equal(batch.next_obs["image"][i], make_obs(s + 1)["image"])
        assert batch.obs["proprioception"][i, 0] == s and batch.next_obs["proprioception"][i, 0] == s + 1
        assert batch.reward[i] == s


def fill_multi(buffer: SharedReplayBuffer, steps: int, start: int = 0) -> None:
    """MULTI_SPACE transitions s -> s + 1 with action (s, 0) and extras (s, s / 100, 2 s)."""
    for s in range(start, start + steps):
        buffer.add(make_multi_obs(s), np.array([s, 0], np.float32), float(s), make_multi_obs(s + 1), False,
                   extras={"age/camera": s, "period": s / 100, "weights_version": 2 * s})


def assert_multi_consistent(batch) -> None:
    """Every key of every row, and its extras, belong to the step its action names."""
    for i in range(len(batch.reward)):
        s = int(batch.action[i, 0])
        for key, value in make_multi_obs(s).items():
            np.testing.assert_array_equal(batch.obs[key][i], value, err_msg=f"obs[{key!r}] of step {s}")
        for key, value in make_multi_obs(s + 1).items():
            np.testing.assert_array_equal(batch.next_obs[key][i], value, err_msg=f"next_obs[{key!r}] of {s}")
        assert batch.reward[i] == s
        assert (batch.extras["age/camera"][i], batch.extras["weights_version"][i]) == (s, 2 * s)
        assert batch.extras["period"][i] == np.float32(s / 100)


def test_samples_return_exactly_the_transitions_added():
    buffer = SharedReplayBuffer(SPACE, A, capacity=100)
    try:
        fill(buffer, 60)
        assert len(buffer) == 60
        batch = buffer.sample(256, np.random.default_rng(0))
        assert batch.obs["image"].shape == (256, *IMAGE_SHAPE) and batch.obs["image"].dtype == np.uint8
        assert batch.obs["proprioception"].shape == (256, P) and batch.obs["proprioception"].dtype == np.float32
        assert batch.terminated.dtype == np.bool_ and batch.extras == {}
        assert_consistent(batch)
        assert set(batch.action[:, 0].astype(int)) == set(range(60))  # all rows reachable
        assert np.all(batch.terminated == (batch.action[:, 0] % 10 == 9))
    finally:
        buffer.close()


def test_each_step_stores_one_new_frame_and_a_reset_stores_one():
    buffer = SharedReplayBuffer(SPACE, A, capacity=100)
    try:
        fill(buffer, 50, episode_length=10)
        # Per episode: the padded reset frame (1), then one new frame per step (10).
        assert buffer.num_frames_added == {"image": 5 * 11}
    finally:
        buffer.close()


def test_two_cameras_and_a_vector_sensor_come_back_exactly_with_their_extras_and_frames_stored_once():
    buffer = SharedReplayBuffer(MULTI_SPACE, A, capacity=100, extras=EXTRAS)
    try:
        fill_multi(buffer, 60)
        batch = buffer.sample(256, np.random.default_rng(0))
        assert batch.obs["scene"].shape == (256, *SCENE_SHAPE) and batch.obs["range"].shape == (256, 3)
        assert set(batch.extras) == set(EXTRAS) and batch.extras["period"].shape == (256,)
        assert_multi_consistent(batch)
        assert set(batch.action[:, 0].astype(int)) == set(range(60))
        # The wrist stack: its first two frames, then one per step. The scene camera shows a new
        # frame every second step, and each is stored once.
        assert buffer.num_frames_added == {"image": 2 + 60, "scene": 31}
    finally:
        buffer.close()


def test_wrapping_keeps_only_recent_valid_transitions():
    buffer = SharedReplayBuffer(SPACE, A, capacity=30, frame_capacity=32)
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
    buffer = SharedReplayBuffer(SPACE, A, capacity=20, frame_capacity=3 * FRAMES)
    try:
        stalled = reset_obs(0)
        for s in range(30):
            buffer.add(stalled, np.array([0, 1], np.float32), 0.0, stalled, False)
        buffer.add(stalled, np.array([0, 1], np.float32), 0.0, make_obs(1), False)
        for s in range(1, 40):
            buffer.add(make_obs(s), np.array([s, 0], np.float32), float(s), make_obs(s + 1), False)
            batch = buffer.sample(64, np.random.default_rng(s))
            keep = batch.action[:, 0] > 0
            assert_consistent(batch._replace(
                obs={k: v[keep] for k, v in batch.obs.items()}, next_obs={k: v[keep] for k, v in batch.next_obs.items()},
                action=batch.action[keep], reward=batch.reward[keep], terminated=batch.terminated[keep]))
            assert np.all(batch.obs["image"][~keep] == 0)  # the stalled transitions: all frames of step 0
    finally:
        buffer.close()


def test_a_stalled_second_camera_never_serves_an_overwritten_frame_while_the_first_keeps_changing():
    # The scene camera repeats one frame for longer than its ring holds; the wrist changes every step.
    buffer = SharedReplayBuffer(MULTI_SPACE, A, capacity=40, frame_capacity=12, extras=EXTRAS)
    try:
        for s in range(200):
            obs, next_obs = make_multi_obs(s), make_multi_obs(s + 1)
            if s < 100:
                obs["scene"][:] = next_obs["scene"][:] = 7  # stalled
            buffer.add(obs, np.array([s, 0], np.float32), float(s), next_obs, False,
                       extras={"age/camera": s, "period": s / 100, "weights_version": 2 * s})
            batch = buffer.sample(32, np.random.default_rng(s))
            for i, step in enumerate(batch.action[:, 0].astype(int)):
                np.testing.assert_array_equal(batch.obs["image"][i], make_obs(step)["image"])
                expected = 7 if step < 100 else (step // 2) % 251
                assert np.all(batch.obs["scene"][i] == expected), f"scene of step {step}"
        assert len(buffer) > 0
    finally:
        buffer.close()


def _sample_in_child(buffer: SharedReplayBuffer, rounds: int, queue, multi: bool) -> None:
    rng = np.random.default_rng(2)
    checked = 0
    try:
        while checked < rounds:
            if len(buffer) == 0:
                continue
            batch = buffer.sample(16, rng)
            assert_multi_consistent(batch) if multi else assert_consistent(batch)
            checked += 1
        queue.put(("ok", checked))
    except Exception as exc:  # report, so the parent can fail with the reason
        queue.put(("error", repr(exc)))
    finally:
        buffer.close()


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
@pytest.mark.parametrize("multi", [False, True], ids=["image+proprioception", "two-cameras+vector+extras"])
def test_a_child_process_samples_consistent_transitions_while_the_parent_writes_and_wraps(method, multi):
    ctx = multiprocessing.get_context(method)
    # Small rings, so the writer overwrites slots the reader is sampling, all the time.
    buffer = (SharedReplayBuffer(MULTI_SPACE, A, capacity=40, frame_capacity=48, extras=EXTRAS) if multi
              else SharedReplayBuffer(SPACE, A, capacity=40, frame_capacity=48))
    queue = ctx.Queue()
    child = ctx.Process(target=_sample_in_child, args=(buffer, 300, queue, multi))
    try:
        child.start()
        start = 0
        while child.is_alive() and queue.empty():
            fill_multi(buffer, 100, start=start) if multi else fill(buffer, 100, episode_length=9, start=start)
            start += 100
        status, detail = queue.get(timeout=30)
        assert status == "ok", detail
        assert start > 40  # the rings wrapped while the child sampled
    finally:
        child.join(10)
        buffer.close()
    assert child.exitcode == 0


@pytest.mark.parametrize("multi", [False, True], ids=["image+proprioception", "two-cameras+vector+extras"])
def test_save_and_load_round_trip(tmp_path, multi):
    make = (lambda: SharedReplayBuffer(MULTI_SPACE, A, capacity=50, extras=EXTRAS)) if multi else \
        (lambda: SharedReplayBuffer(SPACE, A, capacity=50))
    buffer, other = make(), make()
    try:
        fill_multi(buffer, 80) if multi else fill(buffer, 80)
        buffer.save(str(tmp_path / "replay.npz"))
        other.load(str(tmp_path / "replay.npz"))
        assert len(other) == len(buffer) and other.num_added == 80
        assert other.num_frames_added == buffer.num_frames_added
        a, b = buffer.sample(64, np.random.default_rng(3)), other.sample(64, np.random.default_rng(3))
        for x, y in zip(a, b):
            for key in (x if isinstance(x, dict) else [None]):
                np.testing.assert_array_equal(x if key is None else x[key], y if key is None else y[key])
        fill_multi(other, 5, start=80) if multi else fill(other, 5, start=80)  # keeps accepting transitions
        batch = other.sample(64, np.random.default_rng(4))
        assert_multi_consistent(batch) if multi else assert_consistent(batch)
    finally:
        buffer.close()
        other.close()


def test_loading_a_buffer_of_another_size_is_refused(tmp_path):
    buffer = SharedReplayBuffer(SPACE, A, capacity=50)
    other = SharedReplayBuffer(SPACE, A, capacity=60)
    try:
        buffer.save(str(tmp_path / "replay.npz"))
        with pytest.raises(ReplayBufferError, match=re.escape("capacity 50 there, 60 here")):
            other.load(str(tmp_path / "replay.npz"))
    finally:
        buffer.close()
        other.close()


def test_loading_a_buffer_with_other_keys_shapes_or_extras_is_refused_naming_each(tmp_path):
    buffer = SharedReplayBuffer(MULTI_SPACE, A, capacity=50, extras=EXTRAS)
    other_space = spaces.Dict({"image": image_space((3, 32, 40)), "range": vector_space(4),
                               "force": vector_space(6)})
    other = SharedReplayBuffer(other_space, A, capacity=50, extras=("period",))
    try:
        fill_multi(buffer, 10)
        buffer.save(str(tmp_path / "replay.npz"))
        with pytest.raises(ReplayBufferError) as err:
            other.load(str(tmp_path / "replay.npz"))
        message = str(err.value)
        for phrase in ("'image': image uint8 (6, 32, 40) there, image uint8 (3, 32, 40) here",
                       "'scene': image uint8 (3, 36, 44) there, absent here",
                       "'range': vector float32 (3,) there, vector float32 (4,) here",
                       "'force': absent there, vector float32 (6,) here",
                       "extras ['age/camera', 'period', 'weights_version'] there, ['period'] here",
                       "build the buffer with the same observation space"):
            assert phrase in message, message
        assert len(other) == 0  # nothing was loaded
    finally:
        buffer.close()
        other.close()


def test_a_buffer_too_big_for_ram_is_refused_with_its_size_and_every_key():
    space = spaces.Dict({"image": image_space((9, 480, 640)), "scene": image_space((3, 480, 640)),
                         "proprioception": vector_space(21)})
    with pytest.raises(ReplayBufferError, match=re.escape("use --replay_buffer_capacity")) as err:
        SharedReplayBuffer(space, 7, capacity=10_000_000)
    message = str(err.value)
    assert "GB" in message and "10000000 transitions" in message
    assert "image: 11000006 frames of 3x480x640 uint8" in message and "scene: 11000002 frames" in message
    assert "proprioception: float32 (21,)" in message
    fits = int(re.search(r"use --replay_buffer_capacity (\d+)", message).group(1))
    assert 0 < fits < 10_000_000


def test_an_image_key_whose_channels_are_not_rgb_frames_is_refused_naming_it():
    space = spaces.Dict({"depth": image_space((4, 32, 40)), "proprioception": vector_space(P)})
    with pytest.raises(ReplayBufferError, match=re.escape("observation key 'depth' is a uint8 image of shape "
                                                          "(4, 32, 40): expected channel-first stacked RGB")):
        SharedReplayBuffer(space, A, capacity=10)


def test_sampling_an_empty_buffer_and_adding_a_wrong_observation_raise_clear_errors():
    buffer = SharedReplayBuffer(SPACE, A, capacity=10)
    try:
        with pytest.raises(ReplayBufferError, match="empty replay buffer"):
            buffer.sample(4, np.random.default_rng(0))
        bad = make_obs(0)
        bad["image"] = bad["image"].astype(np.float32)
        with pytest.raises(ReplayBufferError, match=re.escape(f"obs['image'] has shape {IMAGE_SHAPE} dtype "
                                                              f"float32, expected {IMAGE_SHAPE} uint8")):
            buffer.add(bad, np.zeros(A, np.float32), 0.0, make_obs(1), False)
        short = make_obs(1)
        short["proprioception"] = short["proprioception"][:-1]
        with pytest.raises(ReplayBufferError, match=re.escape(f"next_obs['proprioception'] has shape ({P - 1},), "
                                                              f"expected ({P},)")):
            buffer.add(make_obs(0), np.zeros(A, np.float32), 0.0, short, False)
        with pytest.raises(ReplayBufferError, match=re.escape("missing ['proprioception'], unknown ['range']")):
            buffer.add({"image": make_obs(0)["image"], "range": np.zeros(3)}, np.zeros(A, np.float32), 0.0,
                       make_obs(1), False)
        assert len(buffer) == 0
    finally:
        buffer.close()


def test_extras_must_be_given_exactly_as_named_at_construction():
    buffer = SharedReplayBuffer(SPACE, A, capacity=10, extras=("period",))
    try:
        with pytest.raises(ReplayBufferError, match=re.escape("extras [] given, this buffer stores ['period']")):
            buffer.add(make_obs(0), np.zeros(A, np.float32), 0.0, make_obs(1), False)
        with pytest.raises(ReplayBufferError, match=re.escape("extras ['age', 'period'] given")):
            buffer.add(make_obs(0), np.zeros(A, np.float32), 0.0, make_obs(1), False,
                       extras={"period": 0.04, "age": 0.01})
        assert len(buffer) == 0
    finally:
        buffer.close()


def test_the_module_docstring_example_of_a_loss_reading_extras_runs():
    assert doctest.testmod(replay_buffer).failed == 0


def test_vector_sensors_of_any_shape_and_dtype_are_stored_as_float32_with_their_shape():
    space = spaces.Dict({"kelvin": spaces.Box(0, 400, (), np.float32),
                         "force_window": spaces.Box(-50, 50, (4, 6), np.float64)})
    buffer = SharedReplayBuffer(space, A, capacity=20)
    try:
        for s in range(10):
            obs = {"kelvin": np.float32(290 + s), "force_window": np.full((4, 6), s / 3)}
            buffer.add(obs, np.array([s, 0], np.float32), 0.0, {**obs, "kelvin": np.float32(291 + s)}, False)
        batch = buffer.sample(16, np.random.default_rng(0))
        assert batch.obs["kelvin"].shape == (16,) and batch.obs["force_window"].shape == (16, 4, 6)
        assert batch.obs["force_window"].dtype == np.float32
        steps = batch.action[:, 0]
        np.testing.assert_array_equal(batch.obs["kelvin"], 290 + steps)
        np.testing.assert_array_equal(batch.next_obs["kelvin"], 291 + steps)
        np.testing.assert_array_equal(batch.obs["force_window"][:, 2, 3], (steps / 3).astype(np.float32))
    finally:
        buffer.close()


PRIVATE_BUFFER = """
import numpy as np
from sac_fixtures import A, SPACE, make_obs
from sac.replay_buffer import SharedReplayBuffer
replay = SharedReplayBuffer(SPACE, A, 50, private=True)
for s in range(5):
    replay.add(make_obs(s), np.zeros(A, np.float32), float(s), make_obs(s + 1), terminated=False)
print(replay.segment_name, len(replay), *replay.sample(3, np.random.default_rng(0)).reward.ravel(), flush=True)
import time; time.sleep(60)
"""


def test_a_private_buffer_works_without_a_name_in_dev_shm_and_its_killed_process_leaves_nothing():
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + PRIVATE_BUFFER
    with Script(code) as script:
        name, size, *rewards = script.read_line(timeout_s=60).split()
        assert size == "5" and {float(r) for r in rewards} <= {0.0, 1.0, 2.0, 3.0, 4.0}, rewards
        assert not (SHM_DIR / name).exists(), "a private buffer's segment is visible in /dev/shm"
        script.kill()  # no cleanup of any kind runs
        assert wait_until(lambda: not pid_alive(script.pid), 5.0)
    assert not (SHM_DIR / name).exists()


def test_a_private_buffer_cannot_be_passed_to_another_process():
    replay = SharedReplayBuffer(SPACE, A, 10, private=True)
    try:
        with pytest.raises(ValueError, match="private to process .* private=False"):
            multiprocessing.get_context("spawn").Process(target=len, args=(replay,)).start()
    finally:
        replay.close()
