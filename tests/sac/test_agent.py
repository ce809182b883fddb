"""SACAgent: acting, one update step, and the full state round trip."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sac_fixtures import A, IMAGE_SHAPE, P, make_obs, tiny_config

from sac.agent import SACAgent
from sac.config import EncoderConfig, EncoderHead, get_preset
from sac.losses import actor_loss
from sac.replay_buffer import Batch

pytestmark = pytest.mark.timeout(120)


def fixed_batch(batch_size: int = 32, seed: int = 0) -> Batch:
    """Terminal transitions with reward 1 - mean((a - 0.5)^2): Q regresses onto a known function
    of the action, and the best action is 0.5 in every dimension."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (batch_size, *IMAGE_SHAPE), dtype=np.uint8)
    action = rng.uniform(-1, 1, (batch_size, A)).astype(np.float32)
    reward = (1 - ((action - 0.5) ** 2).mean(1)).astype(np.float32)
    proprio = rng.standard_normal((batch_size, P)).astype(np.float32)
    return Batch(image, proprio, action, reward, image.copy(), proprio.copy(), np.ones(batch_size, bool))


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_act_returns_an_action_in_bounds_and_deterministic_mode_repeats():
    agent = SACAgent(IMAGE_SHAPE, P, A, tiny_config())
    obs = make_obs(3, np.random.default_rng(0))
    sampled = [agent.act(obs) for _ in range(5)]
    assert all(a.shape == (A,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1) for a in sampled)
    assert not np.allclose(sampled[0], sampled[1])
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), agent.act(obs, deterministic=True))


def test_act_rejects_a_wrong_image_shape_with_a_clear_message():
    agent = SACAgent(IMAGE_SHAPE, P, A, tiny_config())
    obs = make_obs(0)
    obs["image"] = obs["image"].transpose(1, 2, 0)  # HWC instead of CHW
    with pytest.raises(ValueError, match=re.escape(f"expected {IMAGE_SHAPE} uint8")):
        agent.act(obs)


@pytest.mark.parametrize("head, bf16", [(EncoderHead.SPATIAL_SOFTMAX, False), (EncoderHead.LATENT, False),
                                        (EncoderHead.SPATIAL_SOFTMAX, True)],
                         ids=["spatial_softmax", "latent", "spatial_softmax-bf16"])
def test_update_gives_finite_losses_and_losses_fall_on_a_fixed_batch(head, bf16):
    encoder = EncoderConfig(channels=8, strides=(2, 2, 1, 1), head=head, bf16=bf16)
    agent = SACAgent(IMAGE_SHAPE, P, A, tiny_config(encoder=encoder), seed=1)
    batch = fixed_batch()
    infos = [agent.update(batch) for _ in range(300)]
    assert agent.num_updates == 300
    assert {"train/critic_loss", "train/actor_loss", "train/alpha", "train/batch_reward"} <= set(infos[0])
    critic = [i["train/critic_loss"] for i in infos]
    actor = [i["train/actor_loss"] for i in infos if "train/actor_loss" in i]
    assert np.all(np.isfinite(critic)) and np.all(np.isfinite(actor))
    assert np.mean(critic[-20:]) < 0.3 * np.mean(critic[:20])
    assert np.mean(actor[-10:]) < np.mean(actor[:10]) - 0.1
    # The policy moved toward the rewarded action 0.5.
    action = agent.act({"image": batch.image[0], "proprioception": batch.proprioception[0]},
                       deterministic=True)
    assert np.all(action > 0.0), action


def test_actor_update_leaves_the_shared_encoder_to_the_critic():
    agent = SACAgent(IMAGE_SHAPE, P, A, tiny_config(critic_lr=1e-12))
    before = params(agent.encoder)
    actor_before = params(agent.actor)
    agent.update(fixed_batch())  # critic lr ~0: only an actor gradient could move the encoder
    for a, b in zip(before, params(agent.encoder)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, params(agent.actor)))
    features = agent.encoder(torch.zeros(1, *IMAGE_SHAPE[:1], *agent.crop_hw, dtype=torch.uint8),
                             torch.zeros(1, P))
    with pytest.raises(ValueError, match="pass features.detach()"):
        actor_loss(agent.actor, agent.critic, features, torch.tensor(0.1))


def test_state_dict_round_trip_restores_networks_optimizers_temperature_counters_and_rngs():
    original = SACAgent(IMAGE_SHAPE, P, A, tiny_config(), seed=1)
    batch = fixed_batch()
    for _ in range(5):
        original.update(batch)
    state = original.state_dict()
    restored = SACAgent(IMAGE_SHAPE, P, A, tiny_config(), seed=2)  # other init, other RNGs
    restored.load_state_dict(state)
    assert restored.num_updates == 5
    # Same next update (crop offsets and policy noise from the restored RNG, Adam moments restored)
    # and the same next replay indices.
    info_a, info_b = original.update(batch), restored.update(batch)
    assert info_a == info_b
    for name in ("encoder", "actor", "critic", "target_encoder", "target_critic"):
        for a, b in zip(params(getattr(original, name)), params(getattr(restored, name))):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert original.log_alpha.item() == restored.log_alpha.item()
    assert original.np_rng.integers(1 << 30) == restored.np_rng.integers(1 << 30)


def test_loading_a_state_with_other_shapes_names_both():
    state = SACAgent(IMAGE_SHAPE, P, A, tiny_config()).state_dict()
    other = SACAgent(IMAGE_SHAPE, P + 1, A, tiny_config())
    with pytest.raises(ValueError, match="shapes"):
        other.load_state_dict(state)


@pytest.mark.parametrize("name", ["seed", "cpu"])
def test_presets_build_an_agent_for_their_image_size(name):
    preset = get_preset(name)
    shape = (3 * preset.image_history, preset.image_height, preset.image_width)
    agent = SACAgent(shape, 21, 7, preset.agent)
    obs = {"image": np.zeros(shape, np.uint8), "proprioception": np.zeros(21, np.float32)}
    assert agent.act(obs).shape == (7,)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match=re.escape("choose one of ['cpu', 'seed']")):
        get_preset("gpu")


def test_loading_a_state_with_another_config_names_the_differing_field():
    state = SACAgent(IMAGE_SHAPE, P, A, tiny_config()).state_dict()
    other = SACAgent(IMAGE_SHAPE, P, A, tiny_config(discount=0.9))
    with pytest.raises(ValueError, match=re.escape("'discount': (0.99, 0.9)")):
        other.load_state_dict(state)
