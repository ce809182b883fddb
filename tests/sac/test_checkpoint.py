"""Atomic full checkpoints: agent, replay buffer, counters and RNGs survive a round trip; a crash
mid-save leaves the previous checkpoint usable."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from sac_fixtures import SPACE, A, make_obs, tiny_config

from sac.agent import SACAgent
from sac.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
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


def test_round_trip_restores_agent_replay_counters_and_global_rngs(parts, tmp_path):
    agent, replay = parts
    model_dir = str(tmp_path / "model")
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = save_checkpoint(model_dir, 40, lambda p: torch.save(agent.state_dict(), p), replay,
                           {"step": 40, "episode": 2})
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
    first = save_checkpoint(model_dir, 10, lambda p: torch.save(agent.state_dict(), p), replay, {"step": 10})

    def crash(path):
        with open(path, "wb") as f:
            f.write(b"half an agent")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model_dir, 20, crash, replay, {"step": 20})
    assert latest_checkpoint(model_dir) == first
    assert load_trainer_state(first)["step"] == 10
    save_checkpoint(model_dir, 30, lambda p: torch.save(agent.state_dict(), p), replay, {"step": 30})
    save_checkpoint(model_dir, 40, lambda p: torch.save(agent.state_dict(), p), replay, {"step": 40})
    assert sorted(os.listdir(model_dir)) == ["latest", "step_30", "step_40"]  # keeps two, no leftovers
