"""Every exception the framework raises on purpose, under one base class."""


class RTRLError(Exception):
    """Base class of all errors raised by communicators, envs and the SAC agent."""


class SharedBufferError(RTRLError):
    """A shared buffer was used wrongly: wrong shape, dtype, or a closed segment."""


class CommunicatorError(RTRLError):
    """A communicator process failed; the message names it and carries the child traceback."""


class EnvError(RTRLError):
    """The environment cannot go on: a child process or the polling loop died."""


class DeviceError(RTRLError):
    """A device (camera, video file, stream, target display) cannot be opened or stopped delivering."""


class ReplayBufferError(RTRLError):
    """The replay buffer cannot be built or used: too big for RAM, wrong shapes, too few samples."""


class LearnerError(RTRLError):
    """The asynchronous learner process failed; the message carries its traceback."""
