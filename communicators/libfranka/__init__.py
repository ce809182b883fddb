"""libfranka backend: the FR3 driven through pylibfranka's 1 kHz joint-velocity loop."""
from communicators.libfranka.velocity_shaper import VelocityShaper, VelocityShaperConfig

__all__ = ["VelocityShaper", "VelocityShaperConfig"]
