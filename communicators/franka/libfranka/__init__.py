"""libfranka backend: the FR3 driven through pylibfranka's 1 kHz joint-velocity loop.

pylibfranka itself is imported only inside the communicator's child process, so this package
imports (and its configs validate) on machines without it.
"""
from communicators.franka.libfranka.franka_libfranka_communicator import (
    FrankaLibfrankaCommunicator,
    LibfrankaStats,
)
from communicators.franka.libfranka.franka_sim_process import FrankaSimProcess, FrankaSimProcessConfig
from communicators.franka.libfranka.libfranka_config import LibfrankaConfig, fr3_safety_limits
from communicators.franka.libfranka.velocity_shaper import VelocityShaper, VelocityShaperConfig

__all__ = [
    "FrankaLibfrankaCommunicator",
    "LibfrankaStats",
    "FrankaSimProcess",
    "FrankaSimProcessConfig",
    "LibfrankaConfig",
    "VelocityShaper",
    "VelocityShaperConfig",
    "fr3_safety_limits",
]
