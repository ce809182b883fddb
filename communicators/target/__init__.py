"""The visual target: its motion (shared by sim and real) and the real-world target display."""
from communicators.target.target_display_communicator import (
    TargetDisplayCommunicator,
    TargetDisplayConfig,
    display_problem,
    draw_target,
)
from communicators.target.target_motion import TargetConfig, TargetEpisodes, TargetMode, TargetMotion

__all__ = ["TargetConfig", "TargetMode", "TargetMotion", "TargetEpisodes",
           "TargetDisplayCommunicator", "TargetDisplayConfig", "draw_target", "display_problem"]
