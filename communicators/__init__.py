"""Device communicators: one process per device, exchanging data through shared ring buffers.

This package's top level is the generic core (no robot in it):

* :class:`Communicator`: the process that polls a device into its sensor buffer and sends the
  commands it finds in its actuator buffer;
* :class:`SharedBuffer`: the ring of (array, timestamp, index) slots in shared memory;
* :class:`Pacer` and :func:`enable_realtime`: fixed-rate loops and real-time scheduling;
* :class:`SeqLock` and :class:`CommandWatchdog`: the lock-free slot protocol and the
  stale-command rule every device shares;
* :func:`close_all`: the one way a set of communicators is stopped;
* the errors of this layer, under :class:`RTRLError`.

``communicators.senseact`` holds SenseAct 0.1.x's ``Communicator`` and ``SharedBuffer`` over this
core, so a SenseAct device ports by changing its imports.

Devices live in sub-packages: ``communicators.franka`` (the arm's domain code and its real
backends), ``communicators.sim`` (simulated arm, cameras and target), ``communicators.camera``
(OpenCV cameras) and ``communicators.target`` (the target display).
"""

from communicators.communicator import DEFAULT_START_METHOD, Communicator, close_all
from communicators.errors import (CommunicatorError, ConfigError, DeviceError, RealtimeError, RTRLError,
                                  SharedBufferError)
from communicators.realtime import Pacer, PacingMode, enable_realtime
from communicators.seqlock import SeqLock
from communicators.shared_buffer import SharedBuffer
from communicators.watchdog import CommandWatchdog

__all__ = ["Communicator", "DEFAULT_START_METHOD", "close_all", "SharedBuffer", "SeqLock", "CommandWatchdog",
           "Pacer", "PacingMode", "enable_realtime", "RTRLError", "SharedBufferError", "CommunicatorError",
           "DeviceError", "RealtimeError", "ConfigError"]
