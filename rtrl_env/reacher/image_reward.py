"""The visual reacher's reward, computed from one camera image (the seed's reward, made explicit).

Pixels whose RGB values lie inside a red colour range count as target. Each is weighted by how close
it is to the image centre (1 at the centre, falling linearly to 0 at `falloff` times the half
diagonal: 50 px from the centre of a 160x120 image by default), the weights are summed, divided by
the number of pixels, multiplied by `scale` and clipped to [0, `max_reward`]:

    r_image = clip(scale * sum(mask * w) / (H * W), 0, max_reward)          (unitless, 0..4)

The env multiplies it by the cycle time dt (s), so an episode's return measures "seconds of
target-in-view" and compares across cycle times: r_step = r_image * dt.

Example:
    >>> import numpy as np
    >>> img = np.zeros((120, 160, 3), np.uint8)
    >>> image_reward(img)
    0.0
    >>> img[55:65, 75:85] = (220, 20, 20)      # a red square at the centre, 0.5 % of the image
    >>> round(image_reward(img), 3)
    1.925
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class ImageRewardConfig:
    """What counts as red, and how strongly it pays.

    Attributes:
        red_low: inclusive lower RGB bound of a target pixel, 3 ints in 0..255.
        red_high: inclusive upper RGB bound, 3 ints in 0..255, >= red_low.
        scale: multiplier of the centre-weighted red fraction (unitless). With the default, the
            sim's 5 cm target disc centred in the wrist camera's view from the home pose (0.42 m
            above it, about 0.6 % of a 160x120 image) pays about 2.3; a centred patch covering
            1.2 % or more of the image pays the maximum, 4.
        max_reward: the per-image reward is clipped to [0, max_reward].
        falloff: weights reach 0 at `falloff` x the half diagonal from the centre (> 0). The
            default 0.5 pays nothing for a target in the outer part of the image, so a policy
            that only wanders near the home pose earns little (measured in the sim over 12
            episodes, 2-joint task: random policy 1.6 vs expert 7.3 per episode; with 1.0 the
            random policy got 4.2).
    """

    red_low: tuple[int, int, int] = (120, 0, 0)
    red_high: tuple[int, int, int] = (255, 100, 100)
    scale: float = 400.0
    max_reward: float = 4.0
    falloff: float = 0.5

    def __post_init__(self) -> None:
        for name in ("red_low", "red_high"):
            value = tuple(getattr(self, name))
            if len(value) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255
                                          for v in value):
                raise ValueError(
                    f"ImageRewardConfig.{name}={value!r}: expected 3 ints in 0..255 (R, G, B)")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        if any(lo > hi for lo, hi in zip(self.red_low, self.red_high)):
            raise ValueError(f"ImageRewardConfig.red_low={self.red_low} exceeds "
                             f"red_high={self.red_high} on some channel; swap them")
        for name in ("scale", "max_reward", "falloff"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"ImageRewardConfig.{name}={value!r}: expected a number > 0")


@lru_cache(maxsize=8)
def centre_weights(height: int, width: int, falloff: float = 0.5) -> np.ndarray:
    """Per-pixel weights, float32 (height, width): 1 at the centre, linear down to 0.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        falloff: distance of the zero contour in units of the half diagonal.
    """
    ys = (np.arange(height) + 0.5 - height / 2.0)[:, None]
    xs = (np.arange(width) + 0.5 - width / 2.0)[None, :]
    half_diagonal = np.hypot(height, width) / 2.0
    weights = 1.0 - np.hypot(ys, xs) / (falloff * half_diagonal)
    weights = np.clip(weights, 0.0, 1.0).astype(np.float32)
    weights.flags.writeable = False  # cached and shared: nobody may change it
    return weights


def red_mask(image: np.ndarray, config: ImageRewardConfig = ImageRewardConfig()) -> np.ndarray:
    """Boolean (H, W) mask of the pixels inside the red colour range.

    Args:
        image: uint8 RGB image, shape (H, W, 3).
        config: the colour range.

    Raises:
        ValueError: the image is not uint8 (H, W, 3).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image has dtype {image.dtype} and shape {image.shape}; expected uint8 (H, W, 3) RGB, "
            "as the camera communicators publish")
    low = np.array(config.red_low, np.uint8)
    high = np.array(config.red_high, np.uint8)
    return np.all((image >= low) & (image <= high), axis=2)


def image_reward(image: np.ndarray, config: ImageRewardConfig = ImageRewardConfig()) -> float:
    """The per-image reward r_image in [0, config.max_reward] (not yet multiplied by dt).

    Args:
        image: uint8 RGB image, shape (H, W, 3).
        config: colour range, scale and clip.

    Returns:
        clip(scale * sum(red_mask * centre_weights) / (H * W), 0, max_reward).
    """
    mask = red_mask(image, config)
    height, width = mask.shape
    weighted = float(np.sum(centre_weights(height, width, config.falloff), where=mask))
    return float(np.clip(config.scale * weighted / (height * width), 0.0, config.max_reward))
