"""Device communicators: one process per device, exchanging data through shared ring buffers."""

from communicators.errors import CommunicatorError, RTRLError, SharedBufferError
from communicators.shared_buffer import SharedBuffer

__all__ = ["SharedBuffer", "RTRLError", "SharedBufferError", "CommunicatorError"]
from communicators.communicator import Communicator  # noqa: E402
from communicators.pacing import Pacer, PacingMode, enable_realtime  # noqa: E402

__all__ += ["Communicator", "Pacer", "PacingMode", "enable_realtime"]
from communicators.franka_safety import SafetyFilter, SafetyLimits  # noqa: E402
from communicators.franka_state import FrankaState  # noqa: E402

__all__ += ["SafetyFilter", "SafetyLimits", "FrankaState"]
