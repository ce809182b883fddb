"""The Franka arm's domain code, shared by every backend: the 21-float state layout, kinematics and
the safety filter; and the real-robot backends (``ros``, ``libfranka``) as sub-packages.

The simulated arm lives with the other simulated devices in ``communicators.sim``.
"""
from communicators.franka.kinematics import NUM_JOINTS, fk, jacobian
from communicators.franka.safety import SafetyFilter, SafetyLimits
from communicators.franka.state import STATE_DIM, FrankaState

__all__ = ["NUM_JOINTS", "STATE_DIM", "FrankaState", "SafetyFilter", "SafetyLimits", "fk", "jacobian"]
