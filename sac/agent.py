"""SACAgent: acting and one SAC-RAD update step, with a full state dict for checkpoints.

Process plumbing (shared replay, weight publishing, the learner process) lives elsewhere; this
file is the maths of one update and the policy's forward pass.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from sac.augment import center_crop, crop_size, random_crop
from sac.config import AgentConfig
from sac.losses import actor_loss, alpha_loss, critic_loss, td_target
from sac.models import Actor, Critic, Encoder, Policy, init_weights, pixels
from sac.replay_buffer import Batch


class SACAgent:
    """Soft Actor-Critic from stacked camera frames and proprioception, with random crops.

    Args:
        image_shape: (3 * frames, height, width) of the uint8 camera observation, before cropping.
        proprio_dim: length of the float32 proprioception vector.
        action_dim: action size; actions are in [-1, 1] (the env maps them to robot units).
        config: networks and hyperparameters.
        device: torch device of networks and updates ("cpu", "cuda", "cuda:1").
        seed: seeds network initialisation and the agent's own RNGs (crop offsets, policy noise,
            replay sampling via ``np_rng``); the global RNGs are left alone.
    """

    def __init__(self, image_shape: tuple[int, int, int], proprio_dim: int, action_dim: int,
                 config: AgentConfig, device: str | torch.device = "cpu", seed: int = 0):
        c, h, w = (int(x) for x in image_shape)
        if c % 3 != 0:
            raise ValueError(f"image_shape={tuple(image_shape)}: expected (3 * frames, height, width) "
                             f"channel-first RGB frames")
        self.config = config
        self.device = torch.device(device)
        self.image_shape = (c, h, w)
        self.proprio_dim, self.action_dim = int(proprio_dim), int(action_dim)
        self.crop_hw = crop_size(h, w, config.rad_offset)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = Encoder((c, *self.crop_hw), proprio_dim, config.encoder)
            self.actor = Actor(self.encoder.feature_dim, action_dim, config)
            self.critic = Critic(self.encoder.feature_dim, action_dim, config)
            for net in (self.encoder, self.actor, self.critic):
                net.apply(init_weights)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_critic = copy.deepcopy(self.critic)
        for net in (self.encoder, self.actor, self.critic, self.target_encoder, self.target_critic):
            net.to(self.device)
        for p in (*self.target_encoder.parameters(), *self.target_critic.parameters()):
            p.requires_grad_(False)
        self.policy = Policy(self.encoder, self.actor)
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
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Action for one observation.

        Args:
            obs: ``{"image": uint8 (3k, H, W), "proprioception": float32 (P,)}``.
            deterministic: the mean action (evaluation) instead of a sample.

        Returns:
            float32 (action_dim,) in [-1, 1].
        """
        image, proprio = obs["image"], obs["proprioception"]
        if image.shape != self.image_shape or image.dtype != np.uint8:
            raise ValueError(f"obs['image'] has shape {image.shape} dtype {image.dtype}, expected "
                             f"{self.image_shape} uint8 (channel-first stacked frames)")
        if np.shape(proprio) != (self.proprio_dim,):
            raise ValueError(f"obs['proprioception'] has shape {np.shape(proprio)}, "
                             f"expected ({self.proprio_dim},)")
        image = np.ascontiguousarray(center_crop(image, *self.crop_hw))
        with torch.inference_mode():
            img = torch.from_numpy(image).to(self.device)[None]  # (1, 3k, h, w)
            prop = torch.as_tensor(proprio, dtype=torch.float32, device=self.device)[None]
            action = self.policy(img, prop, deterministic, self.torch_rng)
        return action[0].cpu().numpy()

    # ---------------------------------------------------------------- learning
    def update(self, batch: Batch) -> dict[str, float]:
        """One SAC-RAD step: critic (+ encoder) every call; actor and alpha every
        ``actor_update_freq`` calls; targets every ``critic_target_update_freq`` calls.

        Args:
            batch: uncropped transitions from the replay buffer (numpy arrays).

        Returns:
            Namespaced floats (``train/critic_loss``, ``train/actor_loss`` when the actor
            updated, ``train/batch_reward``, ``train/num_updates``, ...).
        """
        cfg, dev, gen = self.config, self.device, self.torch_rng
        image = random_crop(torch.as_tensor(batch.image, device=dev), *self.crop_hw, gen)  # (B,3k,h,w)
        next_image = random_crop(torch.as_tensor(batch.next_image, device=dev), *self.crop_hw, gen)
        proprio = torch.as_tensor(batch.proprioception, device=dev)
        next_proprio = torch.as_tensor(batch.next_proprioception, device=dev)
        action = torch.as_tensor(batch.action, device=dev)
        reward = torch.as_tensor(batch.reward, device=dev)
        terminated = torch.as_tensor(batch.terminated, dtype=torch.float32, device=dev)
        alpha = self.log_alpha.detach().exp()

        with torch.no_grad():
            next_pixels = pixels(next_image)  # converted once for both encoders
            target = td_target(self.actor, self.target_critic, self.encoder(next_pixels, next_proprio),
                               self.target_encoder(next_pixels, next_proprio), reward, terminated,
                               cfg.discount, alpha, gen)
        features = self.encoder(image, proprio)  # (B, F), with gradient into the encoder
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
        """The weights the acting process needs (encoder + actor), as published by the learner."""
        return self.policy.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """Full state: networks, targets, optimizers, temperature, counters and RNG states."""
        return {
            "shapes": (self.image_shape, self.proprio_dim, self.action_dim),
            "config": self.config.to_dict(),
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
            ValueError: the state is from an agent with other shapes or networks.
        """
        mine = (self.image_shape, self.proprio_dim, self.action_dim)
        theirs = tuple(state["shapes"])
        if (tuple(theirs[0]), *theirs[1:]) != mine:
            raise ValueError(f"checkpoint is for (image, proprio, action) shapes {theirs}, this agent "
                             f"has {mine}; build the agent with the checkpoint's settings (args.json)")
        # Rebuilt through AgentConfig, so fields added since the checkpoint take their defaults.
        saved = AgentConfig(**state["config"])
        if saved != self.config:
            diff = {k: (v, self.config.to_dict()[k]) for k, v in saved.to_dict().items()
                    if v != self.config.to_dict()[k]}
            raise ValueError(f"checkpoint agent config differs from this agent's in {diff} "
                             f"(checkpoint, agent); use the same preset and flags")
        for name in ("encoder", "actor", "critic", "target_encoder", "target_critic"):
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
