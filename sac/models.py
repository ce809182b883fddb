"""Networks of SAC-RAD: image encoders fused with the vector part, tanh-Gaussian actor, twin Q critic.

The observation encoder (one convolutional :class:`ImageEncoder` per image key, or one shared,
then the normalised vector keys) is shared by actor and critic: the critic loss trains it, the
actor sees its features detached, because actor gradients through a shared encoder make pixel SAC
unstable (Yarats et al., SAC-AE, 2019, https://arxiv.org/abs/1910.01741, section 4).
:class:`Policy` bundles the vector normaliser, the encoder and the actor: it is all the acting
process needs, and the weight set the learner publishes.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from sac.config import AgentConfig, EncoderConfig, EncoderHead
from sac.normalizer import VectorNormalizer


def conv_output_size(size: int, kernel_size: int, strides: tuple[int, ...]) -> int:
    """Spatial size after a stack of unpadded convolutions (pixels)."""
    out = size
    for stride in strides:
        out = (out - kernel_size) // stride + 1
        if out < 1:
            raise ValueError(f"a {size}-pixel image side (after cropping) is too small for the encoder "
                             f"(kernel {kernel_size}, strides {strides}); use larger images or smaller strides")
    return out


class SpatialSoftmax(nn.Module):
    """Soft-argmax keypoints: (B, C, H, W) -> (B, 2C) expected (x, y) in [-1, 1] per channel."""

    def __init__(self, height: int, width: int):
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width),
                                indexing="ij")
        # Not trained and rebuilt from the shape, so kept out of the state dict.
        self.register_buffer("pos", torch.stack([xs.reshape(-1), ys.reshape(-1)], 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        attention = F.softmax(x.reshape(b, c, -1), dim=-1)  # (B, C, H*W)
        return (attention @ self.pos).reshape(b, 2 * c)  # (B, C, 2) -> (B, 2C)


def pixels(image: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, 3k, H, W) -> float32 channels-last, still 0..255 (the encoder's first
    convolution scales by 1/255). Channels-last halves the convolution backward pass on CPU
    (oneDNN), measured in examples/benchmark_learner.py; a uint8 input that is already
    channels-last (``random_crop``'s output) converts with a plain elementwise pass."""
    return image.to(dtype=torch.float32, memory_format=torch.channels_last)


class ImageEncoder(nn.Module):
    """Convolutions over the stacked uint8 frames of one image key: (B, 3k, h, w) -> (B, feature_dim).

    Args:
        image_shape: (channels, height, width) of the (cropped) network input, channels = 3 * frames.
        config: layer sizes.
    """

    def __init__(self, image_shape: tuple[int, int, int], config: EncoderConfig):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for i, stride in enumerate(config.strides):
            layers.append(nn.Conv2d(c if i == 0 else config.channels, config.channels,
                                    config.kernel_size, stride))
            if i < len(config.strides) - 1:
                layers.append(nn.ReLU())
        self.convs = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        out_h = conv_output_size(h, config.kernel_size, config.strides)
        out_w = conv_output_size(w, config.kernel_size, config.strides)
        if config.head is EncoderHead.SPATIAL_SOFTMAX:
            self.head: nn.Module = SpatialSoftmax(out_h, out_w)
            self.feature_dim = 2 * config.channels
        else:
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(config.channels * out_h * out_w,
                                                              config.latent_dim),
                                      nn.LayerNorm(config.latent_dim), nn.Tanh())
            self.feature_dim = config.latent_dim
        self.image_shape = tuple(image_shape)
        self.bf16 = config.bf16

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3k, h, w) uint8 frames, or their :func:`pixels` -> (B, feature_dim) float32."""
        x = image if image.is_floating_point() else pixels(image)
        first, *rest = self.convs
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            # Pixels become [0, 1] here, through the weights: scaling 3x3 kernels instead of the
            # whole image saves a pass over the largest tensor of the update.
            h = F.conv2d(x, first.weight / 255.0, first.bias, first.stride)
            for layer in rest:
                h = layer(h)
        return self.head(h.float())


class ObservationEncoder(nn.Module):
    """The fused latent of a whole observation: each image key's features, then the vector part.

    Args:
        image_shapes: image key -> (3k, h, w) of its cropped network input, in the layout's order.
        vector_dim: length of the (normalised) vector part.
        config: layer sizes of every image encoder.
        shared: one :class:`ImageEncoder` for every image key (their shapes must be equal) instead
            of one each; the features of each key are still kept apart in the latent.

    Raises:
        ValueError: ``shared`` with image keys of different shapes (named).
    """

    def __init__(self, image_shapes: dict[str, tuple[int, int, int]], vector_dim: int,
                 config: EncoderConfig, shared: bool = False):
        super().__init__()
        self.keys = list(image_shapes)
        if shared and len(set(image_shapes.values())) > 1:
            raise ValueError(f"AgentConfig.shared_image_encoder=True needs image keys of one shape, got "
                             f"{image_shapes} (after cropping); use one encoder per key")
        self.shared = shared and len(self.keys) > 1
        shapes = list(image_shapes.values())[:1] if self.shared else list(image_shapes.values())
        self.images = nn.ModuleList(ImageEncoder(s, config) for s in shapes)
        image_features = sum(e.feature_dim for e in self.images) * (len(self.keys) if self.shared else 1)
        self.vector_dim = int(vector_dim)
        self.feature_dim = image_features + self.vector_dim

    def forward(self, images: dict[str, torch.Tensor], vector: torch.Tensor) -> torch.Tensor:
        """Image key -> (B, 3k, h, w) uint8 or :func:`pixels`, + (B, V) float -> (B, feature_dim) float32."""
        if self.shared:
            # One convolution pass over every key's images, stacked along the batch.
            b = vector.shape[0]
            features = list(self.images[0](torch.cat([images[k] for k in self.keys])).split(b))
        else:
            features = [encoder(images[k]) for k, encoder in zip(self.keys, self.images)]
        return torch.cat([*features, vector], dim=-1)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Linear-ReLU stack: in_dim -> hidden... -> out_dim (no output activation)."""
    dims = (in_dim, *hidden)
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy over encoder features; actions in [-1, 1]^A."""

    def __init__(self, feature_dim: int, action_dim: int, config: AgentConfig):
        super().__init__()
        self.trunk = mlp(feature_dim, config.hidden_sizes, 2 * action_dim)
        self.log_std_min, self.log_std_max = config.log_std_min, config.log_std_max

    def forward(self, features: torch.Tensor, deterministic: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (action (B, A) in [-1, 1], log_prob (B, 1)); log_prob is 0 if deterministic."""
        mu, log_std = self.trunk(features).chunk(2, dim=-1)
        # Squash log_std smoothly into [min, max] (SAC-AE's choice; clamping kills its gradient).
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        if deterministic:
            return torch.tanh(mu), torch.zeros_like(mu[:, :1])
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        pre_tanh = mu + noise * log_std.exp()
        action = torch.tanh(pre_tanh)
        log_prob = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) \
            - 0.5 * math.log(2 * math.pi) * mu.shape[-1]
        # Change of variables through tanh (SAC paper, appendix C), in the stable softplus form.
        log_prob -= (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1, keepdim=True)
        return action, log_prob


class Critic(nn.Module):
    """Twin Q networks over (features, action)."""

    def __init__(self, feature_dim: int, action_dim: int, config: AgentConfig):
        super().__init__()
        self.q1 = mlp(feature_dim + action_dim, config.hidden_sizes, 1)
        self.q2 = mlp(feature_dim + action_dim, config.hidden_sizes, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (q1, q2), each (B, 1)."""
        x = torch.cat([features, action], dim=-1)
        return self.q1(x), self.q2(x)


class Policy(nn.Module):
    """Normaliser + encoder + actor: what the acting process runs and what the learner publishes."""

    def __init__(self, normalizer: VectorNormalizer, encoder: ObservationEncoder, actor: Actor):
        super().__init__()
        self.normalizer = normalizer
        self.encoder = encoder
        self.actor = actor

    def forward(self, images: dict[str, torch.Tensor], vector: torch.Tensor, deterministic: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Image key -> (B, 3k, h, w) uint8, + (B, V) raw vector part -> actions (B, A) in [-1, 1]."""
        return self.actor(self.encoder(images, self.normalizer(vector)), deterministic, generator)[0]


def init_weights(module: nn.Module) -> None:
    """Orthogonal linear layers; delta-orthogonal convolutions (Xiao et al. 2018,
    https://arxiv.org/abs/1806.05393), as SAC-AE initialises them."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        mid = module.weight.shape[2] // 2
        center = torch.empty(module.weight.shape[:2])
        nn.init.orthogonal_(center, nn.init.calculate_gain("relu"))
        with torch.no_grad():
            module.weight[:, :, mid, mid] = center
