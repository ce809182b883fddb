"""SAC losses as functions returning ``(loss, info)``; both serial and async modes use them.

Soft Actor-Critic with automatic temperature: Haarnoja et al. 2018,
https://arxiv.org/abs/1812.05905 (equations 5, 7 and 18). Info values are Python floats under
namespaced keys, ready for the logger.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from sac.models import Actor, Critic


@torch.no_grad()
def td_target(actor: Actor, target_critic: Critic, next_features: torch.Tensor,
              next_target_features: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor,
              discount: float, alpha: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Soft Bellman target r + discount * (1 - terminated) * (min Q' - alpha * log pi), (B, 1).

    Args:
        next_features: online-encoder features of the next observation (B, F): the actor's input.
        next_target_features: target-encoder features of the next observation (B, F).
        reward: (B,) rewards.
        terminated: (B,) 1.0 where the episode ended in a terminal state (a time limit is not one,
            so truncated transitions still bootstrap).
    """
    next_action, next_log_prob = actor(next_features, generator=generator)
    q1, q2 = target_critic(next_target_features, next_action)
    soft_value = torch.min(q1, q2) - alpha * next_log_prob  # (B, 1)
    return reward[:, None] + discount * (1.0 - terminated[:, None]) * soft_value


def critic_loss(critic: Critic, features: torch.Tensor, action: torch.Tensor,
                target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean squared TD error of both Q networks.

    Args:
        features: encoder features (B, F), with gradient: this loss trains the encoder.
        action: (B, A) actions taken.
        target: (B, 1) TD target from :func:`td_target`.
    """
    q1, q2 = critic(features, action)
    loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
    return loss, {"train/critic_loss": loss.item(), "train/q1": q1.mean().item(),
                  "train/td_target": target.mean().item()}


def actor_loss(actor: Actor, critic: Critic, features: torch.Tensor, alpha: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """alpha * log pi(a|s) - min Q(s, a) with a reparameterised a ~ pi.

    Args:
        features: encoder features (B, F), DETACHED: the actor must not train the shared encoder.
        alpha: temperature (scalar tensor, detached).

    Info holds ``train/entropy`` (-mean log pi), which :func:`alpha_loss` takes.
    """
    if features.requires_grad:
        raise ValueError("actor_loss got encoder features with a gradient; pass features.detach() "
                         "so the actor does not train the shared encoder")
    action, log_prob = actor(features, generator=generator)
    q1, q2 = critic(features, action)
    loss = (alpha * log_prob - torch.min(q1, q2)).mean()
    return loss, {"train/actor_loss": loss.item(), "train/entropy": -log_prob.mean().item()}


def alpha_loss(log_alpha: torch.Tensor, entropy: float,
               target_entropy: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Temperature loss alpha * (entropy - target_entropy): alpha falls while entropy is above target.

    Args:
        log_alpha: trainable scalar tensor.
        entropy: current policy entropy estimate (nats), e.g. ``info["train/entropy"]``.
        target_entropy: entropy target (nats), usually -action_dim.
    """
    alpha = log_alpha.exp()
    loss = alpha * (entropy - target_entropy)
    return loss, {"train/alpha_loss": loss.item(), "train/alpha": alpha.item()}
