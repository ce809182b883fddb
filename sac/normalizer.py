"""Running mean/std normalisation of the vector part of the observation.

Sensors come in their own units (rad, N, m, K), so the networks see each normalised vector
element as ``clamp((x - mean) / max(std, min_std), -clip, clip)``, with mean and variance kept
over every batch the learner trained on (Chan et al.'s parallel update, exact for any batch
sizes: https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm).
The statistics are buffers, not parameters: they are in the agent's state dict and in the
published policy weights, and no optimizer touches them. Elements of raw keys
(``AgentConfig.raw_vector_keys``) pass through unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class VectorNormalizer(nn.Module):
    """Normalises selected elements of a (B, V) vector with running statistics.

    Args:
        normalized: V flags: True where the element is normalised, False where it passes raw.
        min_std: floor of the standard deviation, so a (nearly) constant element is not blown
            up into noise.
        clip: normalised values are clamped to [-clip, clip].
    """

    def __init__(self, normalized: Sequence[bool], min_std: float, clip: float):
        super().__init__()
        index = [i for i, flag in enumerate(normalized) if flag]
        self.dim, self.min_std, self.clip = len(normalized), float(min_std), float(clip)
        # Rebuilt from the config, so not saved; the statistics are.
        self.register_buffer("index", torch.tensor(index, dtype=torch.long), persistent=False)
        # float64: a float32 mean stops moving once the count is ~1e7 samples.
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(len(index), dtype=torch.float64))
        self.register_buffer("var", torch.ones(len(index), dtype=torch.float64))

    @property
    def active(self) -> bool:
        """Whether any element is normalised."""
        return self.index.numel() > 0

    @torch.no_grad()
    def update(self, vector: torch.Tensor) -> None:
        """Adds a (B, V) batch to the statistics (learner process)."""
        if not self.active:
            return
        x = vector[:, self.index].double()  # (B, N)
        n, b = self.count, float(x.shape[0])
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = n + b
        self.mean += delta * (b / total)
        self.var.copy_((self.var * n + batch_var * b + delta.square() * (n * b / total)) / total)
        self.count.fill_(total)

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        """(B, V) float32 -> (B, V) float32, normalised where flagged; identity before any update."""
        if not self.active or self.count.item() == 0:
            return vector
        std = self.var.sqrt().clamp_min(self.min_std)
        scaled = ((vector[:, self.index] - self.mean.float()) / std.float()).clamp(-self.clip, self.clip)
        return vector.index_copy(1, self.index, scaled)
