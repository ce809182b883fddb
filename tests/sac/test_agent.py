"""SACAgent: built from the observation space, acting, one update step, vector normalisation and
the full state round trip."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gymnasium import spaces
from sac_fixtures import (IMAGE_SHAPE, MULTI_SPACE, SPACE, A, P, image_space, make_multi_obs, make_obs,
                          tiny_config, vector_space)

from sac.agent import SACAgent
from sac.config import EncoderConfig, EncoderHead, get_preset
from sac.losses import actor_loss
from sac.replay_buffer import Batch
from sac.weights import WeightPublisher

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Updates on one thread, as the acting process runs them: two threads on a loaded 2-core
    machine wait on each other at every op (300 updates went from ~4 s to over 120 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_obs(space: spaces.Dict, batch_size: int, rng: np.random.Generator, scale: float = 1.0) -> dict:
    """(B, ...) random values for every key: uint8 pixels, N(0, scale^2) vectors."""
    return {key: rng.integers(0, 256, (batch_size, *sub.shape), dtype=np.uint8) if sub.dtype == np.uint8
            else (scale * rng.standard_normal((batch_size, *sub.shape))).astype(np.float32)
            for key, sub in space.spaces.items()}


def fixed_batch(space: spaces.Dict = SPACE, batch_size: int = 32, seed: int = 0) -> Batch:
    """Terminal transitions with reward 1 - mean((a - 0.5)^2): Q regresses onto a known function
    of the action, and the best action is 0.5 in every dimension."""
    rng = np.random.default_rng(seed)
    obs = random_obs(space, batch_size, rng)
    action = rng.uniform(-1, 1, (batch_size, A)).astype(np.float32)
    reward = (1 - ((action - 0.5) ** 2).mean(1)).astype(np.float32)
    return Batch(obs, action, reward, {k: v.copy() for k, v in obs.items()}, np.ones(batch_size, bool), {})


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def reacher_space(preset_name: str, joints: int) -> spaces.Dict:
    preset = get_preset(preset_name)
    shape = (3 * preset.image_history, preset.image_height, preset.image_width)
    return spaces.Dict({"image": image_space(shape), "proprioception": vector_space(14 + joints)})


def test_act_returns_an_action_in_bounds_and_deterministic_mode_repeats():
    agent = SACAgent(SPACE, A, tiny_config())
    obs = make_obs(3, np.random.default_rng(0))
    sampled = [agent.act(obs) for _ in range(5)]
    assert all(a.shape == (A,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1) for a in sampled)
    assert not np.allclose(sampled[0], sampled[1])
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), agent.act(obs, deterministic=True))


def test_act_rejects_a_wrong_image_shape_or_a_missing_key_with_a_clear_message():
    agent = SACAgent(SPACE, A, tiny_config())
    obs = make_obs(0)
    obs["image"] = obs["image"].transpose(1, 2, 0)  # HWC instead of CHW
    with pytest.raises(ValueError, match=re.escape(f"expected {IMAGE_SHAPE} uint8")):
        agent.act(obs)
    with pytest.raises(ValueError, match=re.escape("missing ['proprioception']")):
        agent.act({"image": make_obs(0)["image"]})


@pytest.mark.parametrize("head, bf16", [(EncoderHead.SPATIAL_SOFTMAX, False), (EncoderHead.LATENT, False),
                                        (EncoderHead.SPATIAL_SOFTMAX, True)],
                         ids=["spatial_softmax", "latent", "spatial_softmax-bf16"])
def test_update_gives_finite_losses_and_losses_fall_on_a_fixed_batch(head, bf16):
    encoder = EncoderConfig(channels=8, strides=(2, 2, 1, 1), head=head, bf16=bf16)
    agent = SACAgent(SPACE, A, tiny_config(encoder=encoder), seed=1)
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
    action = agent.act({key: value[0] for key, value in batch.obs.items()}, deterministic=True)
    assert np.all(action > 0.0), action


def test_an_agent_from_two_cameras_and_a_vector_sensor_learns_with_an_encoder_per_camera():
    agent = SACAgent(MULTI_SPACE, A, tiny_config(), seed=1)
    assert len(agent.encoder.images) == 2  # one convolutional encoder per image key
    assert agent.encoder.feature_dim == 2 * 8 + 2 * 8 + 3  # spatial softmax per camera, then the range
    assert agent.crop_hw == {"image": (28, 36), "scene": (32, 38)}
    before = [params(e) for e in agent.encoder.images]
    batch = fixed_batch(MULTI_SPACE)
    critic = [agent.update(batch)["train/critic_loss"] for _ in range(300)]
    assert np.all(np.isfinite(critic)) and np.mean(critic[-20:]) < 0.3 * np.mean(critic[:20])
    for old, encoder in zip(before, agent.encoder.images):  # the critic trained both cameras' encoders
        assert any(not torch.equal(a, b) for a, b in zip(old, params(encoder)))
    action = agent.act(make_multi_obs(4), deterministic=True)
    assert action.shape == (A,) and np.all(np.abs(action) <= 1)
    assert np.all(agent.act({key: value[0] for key, value in batch.obs.items()}, deterministic=True) > 0.0)


def test_a_shared_image_encoder_serves_every_camera_of_one_shape_and_refuses_others():
    space = spaces.Dict({"left": image_space(), "right": image_space(), "range": vector_space(3)})
    shared = SACAgent(space, A, tiny_config(shared_image_encoder=True))
    single = SACAgent(SPACE, A, tiny_config())
    assert len(shared.encoder.images) == 1 and count(shared.encoder) == count(single.encoder)
    assert shared.encoder.feature_dim == 2 * 16 + 3  # each camera's features are kept apart
    info = shared.update(fixed_batch(space))
    assert np.isfinite(info["train/critic_loss"])
    with pytest.raises(ValueError, match=re.escape("shared_image_encoder=True needs image keys of one shape")):
        SACAgent(MULTI_SPACE, A, tiny_config(shared_image_encoder=True))


@pytest.mark.parametrize("space", [spaces.Dict({"image": image_space()}), spaces.Dict({"state": vector_space(6)}),
                                   spaces.Dict({"image": image_space(), "kelvin": spaces.Box(0, 400, (), np.float32),
                                                "force_window": spaces.Box(-50, 50, (4, 6), np.float64)})],
                         ids=["image-only", "vector-only", "scalar-and-matrix-sensors"])
def test_an_agent_learns_from_images_alone_vectors_alone_or_sensors_of_any_shape(space):
    agent = SACAgent(space, A, tiny_config())
    batch = fixed_batch(space)
    infos = [agent.update(batch) for _ in range(3)]
    assert all(np.isfinite(i["train/critic_loss"]) for i in infos)
    assert agent.act({key: value[0] for key, value in batch.obs.items()}).shape == (A,)


@pytest.mark.parametrize("space", [SPACE, MULTI_SPACE], ids=["image+proprioception", "two-cameras+vector"])
def test_actor_update_leaves_the_shared_encoder_to_the_critic(space):
    agent = SACAgent(space, A, tiny_config(critic_lr=1e-12))
    before = params(agent.encoder)
    actor_before = params(agent.actor)
    agent.update(fixed_batch(space))  # critic lr ~0: only an actor gradient could move the encoder
    for a, b in zip(before, params(agent.encoder)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, params(agent.actor)))
    images = {key: torch.zeros(1, c, *agent.crop_hw[key], dtype=torch.uint8)
              for key, (c, _, _) in agent.layout.images.items()}
    features = agent.encoder(images, torch.zeros(1, agent.layout.vector_dim))
    with pytest.raises(ValueError, match="pass features.detach()"):
        actor_loss(agent.actor, agent.critic, features, torch.tensor(0.1))


# Recorded with the agent before it was built from the observation space (commit 7b03a19):
# (encoder, actor, critic) parameters for the reacher's image and proprioception (14 + joints).
PRESET_PARAMETERS = {("seed", 7): (30368, 1152014, 2291714), ("seed", 2): (30368, 1136644, 2271234),
                     ("cpu", 7): (8272, 83214, 163330), ("cpu", 2): (8272, 79364, 158210)}


@pytest.mark.parametrize("name, joints", list(PRESET_PARAMETERS), ids=[f"{n}-{j}joints" for n, j in PRESET_PARAMETERS])
def test_presets_keep_their_shapes_and_parameter_counts_for_the_reachers_observation(name, joints):
    space = reacher_space(name, joints)
    agent = SACAgent(space, joints, get_preset(name).agent)
    assert (count(agent.encoder), count(agent.actor), count(agent.critic)) == PRESET_PARAMETERS[(name, joints)]
    preset = get_preset(name)
    assert agent.encoder.feature_dim == 2 * preset.agent.encoder.channels + 14 + joints
    assert not agent.normalizer.active  # the presets feed the proprioception raw, as the seed does
    obs = {"image": np.zeros(space["image"].shape, np.uint8), "proprioception": np.zeros(14 + joints, np.float32)}
    assert agent.act(obs).shape == (joints,)


def test_vector_statistics_follow_the_batches_trained_on_and_raw_keys_pass_unchanged():
    space = spaces.Dict({"image": image_space(), "force": vector_space(4), "proprioception": vector_space(P)})
    agent = SACAgent(space, A, tiny_config(raw_vector_keys=("proprioception",)))
    rng = np.random.default_rng(5)
    seen = []
    for i in range(6):
        batch = fixed_batch(space, seed=i)
        batch.obs["force"][:] = 40 + 25 * rng.standard_normal((32, 4))  # newtons: far from N(0, 1)
        seen.append(batch.obs["force"].copy())
        agent.update(batch)
    seen = np.concatenate(seen)
    norm = agent.normalizer
    assert norm.count.item() == len(seen)
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), seen.var(0), rtol=1e-6)
    vector = torch.as_tensor(np.concatenate([seen[:8], np.full((8, P), 3.0, np.float32)], 1))  # force, then proprio
    out = norm(vector).numpy()
    np.testing.assert_allclose(out[:, :4], (seen[:8] - seen.mean(0)) / seen.std(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out[:, 4:], 3.0)  # raw key
    big = norm(torch.full((1, 4 + P), 1e6)).numpy()
    assert np.all(big[0, :4] == tiny_config().vector_norm_clip)  # clamped


def test_vector_statistics_are_saved_restored_and_published_with_the_policy():
    agent = SACAgent(MULTI_SPACE, A, tiny_config(), seed=1)
    batch = fixed_batch(MULTI_SPACE)
    batch.obs["range"][:] += 100.0
    for _ in range(4):
        agent.update(batch)
    assert agent.normalizer.count.item() == 4 * 32
    state = agent.state_dict()
    assert set(state["normalizer"]) == {"count", "mean", "var"}
    policy = agent.policy_state()
    assert {"normalizer.count", "normalizer.mean", "normalizer.var"} <= set(policy)
    restored = SACAgent(MULTI_SPACE, A, tiny_config(), seed=2)
    restored.load_state_dict(state)
    for name in ("count", "mean", "var"):
        torch.testing.assert_close(getattr(restored.normalizer, name), getattr(agent.normalizer, name))
    assert restored.update(batch) == agent.update(batch)

    # Through shared memory to an acting agent that never trained: it acts as the learner's policy.
    actor = SACAgent(MULTI_SPACE, A, tiny_config(), seed=3)
    publisher = WeightPublisher(agent.policy_state())
    try:
        publisher.publish(agent.policy_state())
        assert publisher.pull(actor.policy) == 1
    finally:
        publisher.close()
    torch.testing.assert_close(actor.normalizer.mean, agent.normalizer.mean.float().double())
    obs = make_multi_obs(3)
    obs["range"] += 100.0
    np.testing.assert_allclose(actor.act(obs, deterministic=True), agent.act(obs, deterministic=True), atol=1e-5)


def test_state_dict_round_trip_restores_networks_optimizers_temperature_counters_and_rngs():
    original = SACAgent(SPACE, A, tiny_config(), seed=1)
    batch = fixed_batch()
    for _ in range(5):
        original.update(batch)
    state = original.state_dict()
    restored = SACAgent(SPACE, A, tiny_config(), seed=2)  # other init, other RNGs
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


def test_loading_a_state_for_other_keys_shapes_or_actions_names_each_difference():
    state = SACAgent(MULTI_SPACE, A, tiny_config()).state_dict()
    other_space = spaces.Dict({"image": image_space(), "range": vector_space(4), "force": vector_space(6)})
    other = SACAgent(other_space, A + 1, tiny_config())
    with pytest.raises(ValueError) as err:
        other.load_state_dict(state)
    for phrase in ("'scene': image uint8 (3, 36, 44) there, absent here",
                   "'range': vector float32 (3,) there, vector float32 (4,) here",
                   "'force': absent there, vector float32 (6,) here", f"action_dim {A} there, {A + 1} here"):
        assert phrase in str(err.value), str(err.value)


def test_raw_vector_keys_must_be_vector_keys_of_the_space():
    with pytest.raises(ValueError, match=re.escape("raw_vector_keys names ['proprio'], not vector keys of the "
                                                   "observation space (its vector keys: ['proprioception'])")):
        SACAgent(SPACE, A, tiny_config(raw_vector_keys=("proprio",)))
    with pytest.raises(ValueError, match=re.escape("expected a tuple of keys, e.g. ('proprioception',)")):
        tiny_config(raw_vector_keys="proprioception")


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match=re.escape("choose one of ['cpu', 'seed']")):
        get_preset("gpu")


def test_loading_a_state_with_another_config_names_the_differing_field():
    state = SACAgent(SPACE, A, tiny_config()).state_dict()
    other = SACAgent(SPACE, A, tiny_config(discount=0.9))
    with pytest.raises(ValueError, match=re.escape("'discount': (0.99, 0.9)")):
        other.load_state_dict(state)
