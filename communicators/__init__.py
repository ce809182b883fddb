"""Device communicators: one process per device, exchanging data through shared ring buffers.

This package's top level is the generic core (no robot in it):

* :class:`Communicator`: the process that polls a device into its sensor buffer and sends the
  commands it finds in its actuator buffer;
* :class:`SharedBuffer`: the ring of (array, timestamp, index) slots in shared memory;
* :class:`Pacer` and :func:`enable_realtime`: fixed-rate loops and real-time scheduling;
* the errors of this layer, under :class:`RTRLError`.

Devices live in sub-packages: ``communicators.franka`` (the arm's domain code and its real
backends), ``communicators.sim`` (simulated arm, cameras and target), ``communicators.camera``
(OpenCV cameras) and ``communicators.target`` (the target display).
"""

from communicators.communicator import DEFAULT_START_METHOD, Communicator
from communicators.errors import CommunicatorError, DeviceError, RTRLError, SharedBufferError
from communicators.realtime import Pacer, PacingMode, enable_realtime
from communicators.shared_buffer import SharedBuffer

__all__ = ["Communicator", "DEFAULT_START_METHOD", "SharedBuffer", "Pacer", "PacingMode", "enable_realtime",
           "RTRLError", "SharedBufferError", "CommunicatorError", "DeviceError"]
