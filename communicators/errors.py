"""Errors of the device layer, under the one base class every error of the framework shares.

The env's errors live in ``rtrl_env.errors`` and the learner's in ``sac.errors``; all of them
derive from :class:`RTRLError`, so ``except RTRLError`` catches anything the framework raises on
purpose.
"""


class RTRLError(Exception):
    """Base class of all errors raised by communicators, envs and the SAC agent."""


class SharedBufferError(RTRLError):
    """A shared buffer was used wrongly: wrong shape, dtype, or a closed segment."""


class CommunicatorError(RTRLError):
    """A communicator process failed; the message names it and carries the child traceback."""


class DeviceError(RTRLError):
    """A device (camera, video file, stream, target display) cannot be opened or stopped delivering."""


class RealtimeError(DeviceError):
    """Real-time scheduling (SCHED_FIFO, CPU pinning) was required and the system refused it."""
