"""Device communicators: one process per device, exchanging data through shared ring buffers."""

from communicators.errors import CommunicatorError, RTRLError, SharedBufferError
from communicators.shared_buffer import SharedBuffer

__all__ = ["SharedBuffer", "RTRLError", "SharedBufferError", "CommunicatorError"]
