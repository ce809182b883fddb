"""Configuration of the SAC-RAD agent, and the named presets (``seed``, ``cpu``).

One dataclass per concern: :class:`EncoderConfig` (the convolutional image encoder),
:class:`AgentConfig` (networks and SAC hyperparameters) and :class:`Preset` (an agent plus the
image size it was designed for). Every config checks itself in ``__post_init__`` and names the
field in its error.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field

from communicators.errors import ConfigError


class EncoderHead(str, enum.Enum):
    """How the last convolution becomes a feature vector."""

    SPATIAL_SOFTMAX = "spatial_softmax"
    """Expected (x, y) image position per channel: 2 * channels features, no parameters."""
    LATENT = "latent"
    """Flatten, linear layer, LayerNorm, tanh (SAC-AE): ``latent_dim`` features."""

    @classmethod
    def _missing_(cls, value: object) -> EncoderHead:
        options = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"encoder head {value!r} is unknown; choose one of {options}")


@dataclass
class EncoderConfig:
    """Convolutional image encoder of an image key; its features join the other keys' in the latent."""

    channels: int = 32
    """Channels of every convolution layer."""
    strides: tuple[int, ...] = (2, 2, 2, 1)
    """Stride of each 3x3 convolution layer; one entry per layer."""
    kernel_size: int = 3
    """Square kernel size of every convolution layer, in pixels."""
    head: EncoderHead = EncoderHead.SPATIAL_SOFTMAX
    """Feature head after the convolutions (see :class:`EncoderHead`)."""
    latent_dim: int = 50
    """Feature size of the ``latent`` head; unused by ``spatial_softmax``."""
    bf16: bool = False
    """Run the convolutions under bfloat16 autocast (fp32 weights and head): ~1.6x faster on CPUs
    with AVX512-BF16 or AMX, and on GPUs; off by default to keep the seed's numerics."""

    def __post_init__(self) -> None:
        self.strides = tuple(int(s) for s in self.strides)
        self.head = EncoderHead(self.head)
        if not self.strides or any(s < 1 for s in self.strides):
            raise ValueError(f"EncoderConfig.strides={self.strides}: expected one stride >= 1 per layer")
        for name in ("channels", "kernel_size", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"EncoderConfig.{name}={getattr(self, name)}: expected >= 1")


@dataclass
class AgentConfig:
    """SAC-RAD networks and hyperparameters. Defaults are the seed's (franka-async-rl), except that
    every vector key of the observation is normalised (the presets keep the reacher's
    proprioception raw, as the seed feeds it)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Image encoder (one per image key), shared by actor and critic, trained by the critic loss only."""
    shared_image_encoder: bool = False
    """One image encoder for every image key (all of one shape) instead of one per key."""
    raw_vector_keys: tuple[str, ...] = ()
    """Vector keys the networks see as they are; every other vector key is normalised by the
    running mean/std of the batches trained on (sac/normalizer.py)."""
    vector_norm_min_std: float = 1e-3
    """Floor of the std a normalised vector element is divided by, in the sensor's units."""
    vector_norm_clip: float = 10.0
    """Normalised vector elements are clamped to +-this many standard deviations."""
    hidden_sizes: tuple[int, ...] = (1024, 1024)
    """Hidden layer widths of the actor and of each Q network."""
    batch_size: int = 128
    """Transitions per gradient update."""
    discount: float = 0.99
    """Discount factor per env step."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    alpha_lr: float = 1e-4
    """Adam learning rate of log(alpha)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics and the encoder."""
    critic_tau: float = 0.01
    """Polyak rate of the target Q networks."""
    encoder_tau: float = 0.05
    """Polyak rate of the target encoder."""
    actor_update_freq: int = 2
    """Update the actor and alpha every this many critic updates."""
    critic_target_update_freq: int = 2
    """Update the target networks every this many critic updates."""
    rad_offset: float = 0.01
    """Random-crop margin per side, as a fraction of the image size (RAD)."""
    log_std_min: float = -10.0
    """Lower bound of the policy's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the policy's log standard deviation."""
    target_entropy: float | None = None
    """Entropy target of the temperature loss; None means -action_dim."""

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if isinstance(self.raw_vector_keys, str):
            raise ValueError(f"AgentConfig.raw_vector_keys={self.raw_vector_keys!r}: expected a tuple of "
                             f"keys, e.g. ({self.raw_vector_keys!r},)")
        self.raw_vector_keys = tuple(str(k) for k in self.raw_vector_keys)
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"AgentConfig.hidden_sizes={self.hidden_sizes}: expected widths >= 1")
        def bad(name: str, requirement: str) -> ConfigError:
            return ConfigError("AgentConfig", name, getattr(self, name), requirement)

        for name in ("batch_size", "actor_update_freq", "critic_target_update_freq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, "must be a whole number >= 1")
        for name in ("init_temperature", "alpha_lr", "actor_lr", "critic_lr", "vector_norm_min_std",
                     "vector_norm_clip"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise bad(name, "must be a positive number")
        for name in ("discount", "critic_tau", "encoder_tau"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be a number in [0, 1]")
        if not 0.0 <= self.rad_offset < 0.5:
            raise bad("rad_offset", "must be a fraction of the image in [0, 0.5)")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"AgentConfig.log_std_min={self.log_std_min} must be below "
                             f"log_std_max={self.log_std_max}")

    def to_dict(self) -> dict:
        """Plain-JSON form (enums as strings); ``AgentConfig(**d)`` rebuilds it."""
        d = dataclasses.asdict(self)
        d["encoder"]["head"] = self.encoder.head.value
        return d


@dataclass
class Preset:
    """An agent configuration together with the camera image it was designed for."""

    name: str
    """Preset name, as given to ``--preset``."""
    agent: AgentConfig
    """Networks and hyperparameters."""
    image_width: int
    """Camera image width in pixels."""
    image_height: int
    """Camera image height in pixels."""
    image_history: int
    """Stacked frames per observation."""
    description: str = ""
    """One line on what the preset is for."""


# The reacher's proprioception (joint angles in rad, velocities in rad/s, the previous action in
# [-1, 1]) is fed raw, as the seed does, so the presets' networks compute what they always did;
# the keys of added sensors are normalised.
_REACHER_RAW_KEYS = ("proprioception",)


def _seed() -> Preset:
    # The anchors' network (ur5_async_rl configs/ur5_config.py): 4 conv 3x3x32, strides 2,2,2,1,
    # spatial softmax, two 1024-unit hidden layers; the seed's 160x120 images, 3 frames.
    return Preset("seed", AgentConfig(raw_vector_keys=_REACHER_RAW_KEYS), image_width=160, image_height=120,
                  image_history=3, description="the seed's architecture and hyperparameters (GPU-sized)")


def _cpu() -> Preset:
    # Sized to learn the sim reacher in real time on 2 CPU cores (see examples/benchmark_learner.py):
    # small images, a strided encoder with few channels, spatial softmax (no large linear layer),
    # 256-unit MLPs and batch 64. The target is a red blob; coarse pixels still locate it.
    agent = AgentConfig(encoder=EncoderConfig(channels=16, strides=(2, 2, 1, 1)),
                        hidden_sizes=(256, 256), batch_size=64, rad_offset=0.04,
                        raw_vector_keys=_REACHER_RAW_KEYS)
    return Preset("cpu", agent, image_width=64, image_height=48, image_history=3,
                  description="small images and networks that update fast on a 2-core CPU")


PRESETS = {"seed": _seed, "cpu": _cpu}


def get_preset(name: str) -> Preset:
    """Returns a fresh copy of the named preset.

    Args:
        name: one of ``PRESETS`` (``"seed"``, ``"cpu"``).

    Raises:
        ValueError: the name is unknown; the message lists the presets.

    >>> get_preset("cpu").agent.batch_size
    64
    """
    if name not in PRESETS:
        raise ValueError(f"preset {name!r} is unknown; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()
