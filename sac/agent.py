"""SACAgent: acting and one SAC-RAD update step, with a full state dict for checkpoints.

The agent is built from the observation space (sac/observation.py says which keys are images and
which are vectors): a convolutional encoder per image key (or one shared), the vector keys
flattened, concatenated in the space's key order and normalised by running statistics (except
``AgentConfig.raw_vector_keys``); actor and critics consume the fused latent. Random crops
(RAD) apply to images only.

Process plumbing (shared replay, weight publishing, the learner process) lives elsewhere; this
file is the maths of one update and the policy's forward pass.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from sac.augment import center_crop, crop_size, random_crop
from sac.config import AgentConfig
from sac.losses import actor_loss, alpha_loss, critic_loss, td_target
from sac.models import Actor, Critic, ObservationEncoder, Policy, init_weights, pixels
from sac.normalizer import VectorNormalizer
from sac.observation import ObservationLayout
from sac.replay_buffer import Batch


class SACAgent:
    """Soft Actor-Critic from any mix of stacked camera frames and vector sensors, with random crops.

    Args:
        observation_space: the env's ``gymnasium.spaces.Dict`` (image and vector keys as in
            sac/observation.py).
        action_dim: action size; actions are in [-1, 1] (the env maps them to robot units).
        config: networks and hyperparameters.
        device: torch device of networks and updates ("cpu", "cuda", "cuda:1").
        seed: seeds network initialisation and the agent's own RNGs (crop offsets, policy noise,
            replay sampling via ``np_rng``); the global RNGs are left alone.

    Raises:
        ValueError: a key of the space cannot be learned from, or ``config.raw_vector_keys``
            names a key that is not a vector key of the space.
    """

    def __init__(self, observation_space: spaces.Dict, action_dim: int, config: AgentConfig,
                 device: str | torch.device = "cpu", seed: int = 0):
        self.observation_space = observation_space
        self.layout = ObservationLayout.from_space(observation_space)
        unknown = [k for k in config.raw_vector_keys if k not in self.layout.vectors]
        if unknown:
            raise ValueError(f"AgentConfig.raw_vector_keys names {unknown}, not vector keys of the observation "
                             f"space (its vector keys: {list(self.layout.vectors)}); drop them")
        self.config = config
        self.device = torch.device(device)
        self.action_dim = int(action_dim)
        self.crop_hw = {key: crop_size(h, w, config.rad_offset) for key, (_, h, w) in self.layout.images.items()}
        """Image key -> (height, width) of the network input after cropping."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = ObservationEncoder({key: (c, *self.crop_hw[key]) for key, (c, _, _)
                                               in self.layout.images.items()}, self.layout.vector_dim,
                                              config.encoder, config.shared_image_encoder)
            self.actor = Actor(self.encoder.feature_dim, action_dim, config)
            self.critic = Critic(self.encoder.feature_dim, action_dim, config)
            for net in (self.encoder, self.actor, self.critic):
                net.apply(init_weights)
        normalized = [key not in config.raw_vector_keys for key, shape in self.layout.vectors.items()
                      for _ in range(int(np.prod(shape)))]
        # One normaliser for the online and the target encoder: its statistics are not averaged.
        self.normalizer = VectorNormalizer(normalized, config.vector_norm_min_std, config.vector_norm_clip)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_critic = copy.deepcopy(self.critic)
        for net in (self.normalizer, self.encoder, self.actor, self.critic, self.target_encoder,
                    self.target_critic):
            net.to(self.device)
        for p in (*self.target_encoder.parameters(), *self.target_critic.parameters()):
            p.requires_grad_(False)
        self.policy = Policy(self.normalizer, self.encoder, self.actor)
        self.log_alpha = torch.tensor(math.log(config.init_temperature), device=self.device,
                                      requires_grad=True)
        self.target_entropy = (-float(action_dim) if config.target_entropy is None
                               else config.target_entropy)
        # The encoder is trained by the critic loss only (see sac/models.py).
        self.critic_optimizer = torch.optim.Adam([*self.encoder.parameters(), *self.critic.parameters()],
                                                 lr=config.critic_lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr, betas=(0.5, 0.999))
        self.num_updates = 0
        self.torch_rng = torch.Generator(device=self.device)
        self.torch_rng.manual_seed(seed)
        self.np_rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ acting
    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Action for one observation (acting process).

        Args:
            obs: one value per key of the observation space (images uint8 (3k, H, W)).
            deterministic: the mean action (evaluation) instead of a sample.

        Returns:
            float32 (action_dim,) in [-1, 1].

        Raises:
            ValueError: ``obs`` lacks a key, has an unknown one, or a value of the wrong shape.
        """
        self.layout.check(obs, "obs")
        with torch.inference_mode():
            images = {key: torch.from_numpy(np.ascontiguousarray(center_crop(obs[key], *hw)))
                      .to(self.device)[None] for key, hw in self.crop_hw.items()}  # (1, 3k, h, w) each
            vector = self._vector({key: np.asarray(obs[key], np.float32)[None]
                                   for key in self.layout.vectors}, 1)  # (1, V)
            action = self.policy(images, vector, deterministic, self.torch_rng)
        return action[0].cpu().numpy()

    def _vector(self, obs: Mapping[str, np.ndarray], batch_size: int) -> torch.Tensor:
        """Vector keys of a batch -> (B, V) float32 on the device, flattened, in the layout's order."""
        parts = [torch.as_tensor(obs[key], dtype=torch.float32, device=self.device).reshape(batch_size, -1)
                 for key in self.layout.vectors]
        if not parts:  # images only: an empty vector part
            return torch.zeros(batch_size, 0, device=self.device)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    # ---------------------------------------------------------------- learning
    def update(self, batch: Batch) -> dict[str, float]:
        """One SAC-RAD step (learner process, or the acting one in serial mode): the vector
        statistics and the critic (+ encoder) every call; actor and alpha every
        ``actor_update_freq`` calls; targets every ``critic_target_update_freq`` calls.

        Args:
            batch: uncropped transitions from the replay buffer (numpy arrays). ``batch.extras``
                is not used by this loss.

        Returns:
            Namespaced floats (``train/critic_loss``, ``train/actor_loss`` when the actor
            updated, ``train/batch_reward``, ``train/num_updates``, ...).
        """
        cfg, dev, gen = self.config, self.device, self.torch_rng
        images, next_images = {}, {}
        for key, hw in self.crop_hw.items():
            images[key] = random_crop(torch.as_tensor(batch.obs[key], device=dev), *hw, gen)  # (B,3k,h,w)
            next_images[key] = random_crop(torch.as_tensor(batch.next_obs[key], device=dev), *hw, gen)
        vector = self._vector(batch.obs, len(batch.reward))  # (B, V)
        next_vector = self._vector(batch.next_obs, len(batch.reward))
        self.normalizer.update(vector)
        vector, next_vector = self.normalizer(vector), self.normalizer(next_vector)
        action = torch.as_tensor(batch.action, device=dev)
        reward = torch.as_tensor(batch.reward, device=dev)
        terminated = torch.as_tensor(batch.terminated, dtype=torch.float32, device=dev)
        alpha = self.log_alpha.detach().exp()

        with torch.no_grad():
            next_pixels = {key: pixels(image) for key, image in next_images.items()}  # once for both encoders
            target = td_target(self.actor, self.target_critic, self.encoder(next_pixels, next_vector),
                               self.target_encoder(next_pixels, next_vector), reward, terminated,
                               cfg.discount, alpha, gen)
        features = self.encoder(images, vector)  # (B, F), with gradient into the encoder
        loss, info = critic_loss(self.critic, features, action, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()

        if self.num_updates % cfg.actor_update_freq == 0:
            # Freeze the critic so the actor's backward pass skips its weight gradients.
            self.critic.requires_grad_(False)
            loss, actor_info = actor_loss(self.actor, self.critic, features.detach(), alpha, gen)
            self.actor_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.actor_optimizer.step()
            self.critic.requires_grad_(True)
            loss, alpha_info = alpha_loss(self.log_alpha, actor_info["train/entropy"], self.target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.alpha_optimizer.step()
            info.update(actor_info, **alpha_info)

        if self.num_updates % cfg.critic_target_update_freq == 0:
            soft_update(self.target_critic, self.critic, cfg.critic_tau)
            soft_update(self.target_encoder, self.encoder, cfg.encoder_tau)
        self.num_updates += 1
        info["train/batch_reward"] = float(reward.mean())
        info["train/num_updates"] = float(self.num_updates)
        return info

    # ------------------------------------------------------------ checkpoints
    def policy_state(self) -> dict[str, torch.Tensor]:
        """The weights the acting process needs (vector statistics, encoder, actor), as the
        learner publishes them (sac/weights.py)."""
        return self.policy.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """Full state: networks, targets, vector statistics, optimizers, temperature, counters, RNGs."""
        return {
            "observations": self.layout.describe(), "action_dim": self.action_dim,
            "config": self.config.to_dict(), "normalizer": self.normalizer.state_dict(),
            "encoder": self.encoder.state_dict(), "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(), "target_encoder": self.target_encoder.state_dict(),
            "target_critic": self.target_critic.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "num_updates": self.num_updates, "torch_rng": self.torch_rng.get_state(),
            "np_rng": self.np_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores everything :meth:`state_dict` saved.

        Raises:
            ValueError: the state is from an agent with other observation keys or shapes, another
                action size or another config; the message names each difference.
        """
        if "observations" not in state:
            raise ValueError("checkpoint is from an agent before observation keys were saved (it has "
                             "'shapes', not 'observations'); it cannot be loaded into this agent")
        problems = self.layout.differences(state["observations"])
        if state["action_dim"] != self.action_dim:
            problems.append(f"action_dim {state['action_dim']} there, {self.action_dim} here")
        if problems:
            raise ValueError(f"checkpoint is for another observation space or action: {'; '.join(problems)}; "
                             f"build the agent for the checkpoint's env (args.json)")
        # Rebuilt through AgentConfig, so fields added since the checkpoint take their defaults.
        saved = AgentConfig(**state["config"])
        if saved != self.config:
            diff = {k: (v, self.config.to_dict()[k]) for k, v in saved.to_dict().items()
                    if v != self.config.to_dict()[k]}
            raise ValueError(f"checkpoint agent config differs from this agent's in {diff} "
                             f"(checkpoint, agent); use the same preset and flags")
        for name in ("normalizer", "encoder", "actor", "critic", "target_encoder", "target_critic"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        # Deep copies: Optimizer.load_state_dict keeps the given moment tensors, which would
        # otherwise alias the source agent's and move with its updates.
        self.critic_optimizer.load_state_dict(copy.deepcopy(state["critic_optimizer"]))
        self.actor_optimizer.load_state_dict(copy.deepcopy(state["actor_optimizer"]))
        self.alpha_optimizer.load_state_dict(copy.deepcopy(state["alpha_optimizer"]))
        self.num_updates = int(state["num_updates"])
        self.torch_rng.set_state(state["torch_rng"])
        self.np_rng.bit_generator.state = state["np_rng"]


@torch.no_grad()
def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """target <- tau * source + (1 - tau) * target, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
