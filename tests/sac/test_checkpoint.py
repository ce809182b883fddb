"""Checkpoints you can always resume from: a full round trip, a crash mid-save, pruning by save
order that never deletes what ``latest`` names, and a full disk (a real small tmpfs) that leaves the
previous checkpoint intact with a message naming the directory and the sizes."""
from __future__ import annotations

import os
import random
import re
import subprocess

import numpy as np
import pytest
import torch
from sac_fixtures import SPACE, A, make_obs, tiny_config

from sac.agent import SACAgent
from sac.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from sac.errors import CheckpointError
from sac.replay_buffer import SharedReplayBuffer

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leaked_segments")]


@pytest.fixture
def parts():
    replay = SharedReplayBuffer(SPACE, A, capacity=64)
    for s in range(40):
        replay.add(make_obs(s), np.full(A, 0.1, np.float32), float(s), make_obs(s + 1), False)
    agent = SACAgent(SPACE, A, tiny_config(), seed=3)
    for _ in range(3):
        agent.update(replay.sample(16, agent.np_rng))
    yield agent, replay
    replay.close()


def writer(agent, replay):
    """What an updater's write_checkpoint does: agent.pt and replay.npz into the directory."""
    def write(directory: str) -> None:
        torch.save(agent.state_dict(), os.path.join(directory, "agent.pt"))
        replay.save(os.path.join(directory, "replay.npz"))
    return write


def test_round_trip_restores_agent_replay_counters_and_global_rngs(parts, tmp_path):
    agent, replay = parts
    model_dir = str(tmp_path / "model")
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = save_checkpoint(model_dir, 40, writer(agent, replay), {"step": 40, "episode": 2})
    expected_draws = (random.random(), np.random.rand(), torch.rand(1).item())
    assert latest_checkpoint(model_dir) == path
    random.seed(9), np.random.seed(9), torch.manual_seed(9)

    state = load_trainer_state(path)
    assert state == {"step": 40, "episode": 2}
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected_draws
    restored = SACAgent(SPACE, A, tiny_config(), seed=4)
    restored.load_state_dict(torch.load(os.path.join(path, "agent.pt"), weights_only=False))
    other = SharedReplayBuffer(SPACE, A, capacity=64)
    try:
        other.load(os.path.join(path, "replay.npz"))
        # Both continue identically: same sampled batch, same update.
        batch_a, batch_b = replay.sample(16, agent.np_rng), other.sample(16, restored.np_rng)
        for x, y in zip(batch_a, batch_b):
            for key in (x if isinstance(x, dict) else [None]):
                np.testing.assert_array_equal(x if key is None else x[key], y if key is None else y[key])
        assert agent.update(batch_a) == restored.update(batch_b)
    finally:
        other.close()


def test_a_crash_mid_save_keeps_the_previous_checkpoint_and_the_next_save_cleans_up(parts, tmp_path):
    agent, replay = parts
    model_dir = str(tmp_path / "model")
    first = save_checkpoint(model_dir, 10, writer(agent, replay), {"step": 10})

    def crash(directory):
        with open(os.path.join(directory, "agent.pt"), "wb") as f:
            f.write(b"half an agent")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointError, match=re.escape(f"the previous checkpoint {first} is intact")):
        save_checkpoint(model_dir, 20, crash, {"step": 20})
    assert latest_checkpoint(model_dir) == first and sorted(os.listdir(model_dir)) == ["latest", "step_10"]
    assert load_trainer_state(first)["step"] == 10
    save_checkpoint(model_dir, 30, writer(agent, replay), {"step": 30})
    save_checkpoint(model_dir, 40, writer(agent, replay), {"step": 40})
    assert sorted(os.listdir(model_dir)) == ["latest", "step_30", "step_40"]  # keeps two, no leftovers


def test_pruning_keeps_the_newest_by_save_order_and_never_what_latest_names(parts, tmp_path):
    agent, replay = parts
    model_dir = str(tmp_path / "model")
    for step in (400, 414, 336):  # a lower step saved last (the reproduction)
        save_checkpoint(model_dir, step, writer(agent, replay), {"step": step})
    assert latest_checkpoint(model_dir) == os.path.join(model_dir, "step_336")
    assert sorted(os.listdir(model_dir)) == ["latest", "step_336", "step_414"]
    assert load_trainer_state(latest_checkpoint(model_dir))["step"] == 336


def test_the_same_step_saved_twice_replaces_it_without_a_moment_where_latest_dangles(parts, tmp_path):
    agent, replay = parts
    model_dir = str(tmp_path / "model")
    save_checkpoint(model_dir, 50, writer(agent, replay), {"step": 50, "episode": 1})
    save_checkpoint(model_dir, 50, writer(agent, replay), {"step": 50, "episode": 2})
    assert load_trainer_state(latest_checkpoint(model_dir))["episode"] == 2
    assert sorted(os.listdir(model_dir)) == ["latest", "step_50"]


@pytest.fixture
def small_disk(tmp_path):
    """A real 3 MB tmpfs (needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_disk_that_fills_during_the_write_fails_naming_the_directory_and_sizes_and_cleans_up(
        parts, small_disk, monkeypatch):
    agent, replay = parts
    model_dir = str(small_disk / "model")
    monkeypatch.setattr("sac.checkpoint.MARGIN_BYTES", 0)  # past the check before writing

    def write_big(directory):  # a checkpoint that cannot fit in 3 MB
        writer(agent, replay)(directory)
        with open(os.path.join(directory, "replay.npz"), "ab") as f:
            f.write(os.urandom(4 * 2**20))

    with pytest.raises(CheckpointError) as caught:
        save_checkpoint(model_dir, 10, write_big, {"step": 10})
    message = str(caught.value)
    assert model_dir in message and re.search(r"about \d+ MB are needed and \d+ MB are free", message), message
    assert os.listdir(model_dir) == [], "the failed write left files behind"


def test_before_writing_the_free_space_is_checked_against_the_previous_checkpoints_size(
        parts, small_disk, monkeypatch):
    agent, replay = parts
    model_dir = str(small_disk / "model")
    monkeypatch.setattr("sac.checkpoint.MARGIN_BYTES", 0)
    # The first checkpoint fits; filling the disk afterwards leaves no room for another of its size.
    first = save_checkpoint(model_dir, 10, writer(agent, replay), {"step": 10})
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize - 4096))
    with pytest.raises(CheckpointError, match=re.escape(f"not enough free space in {model_dir} for a "
                                                        "checkpoint")) as caught:
        save_checkpoint(model_dir, 20, writer(agent, replay), {"step": 20})
    assert f"the previous checkpoint {first} is intact" in str(caught.value)
    assert latest_checkpoint(model_dir) == first and load_trainer_state(first)["step"] == 10
