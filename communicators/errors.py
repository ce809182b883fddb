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


class ConfigError(RTRLError, ValueError):
    """A setting has a value it cannot take (raised by config dataclasses on construction).

    It carries the parts of its message, so a command line can name the flag the user typed
    instead of the field: ``--dt 0: must be a positive number of seconds, e.g. --dt 0.04``.

    Args:
        owner: the config class, e.g. ``"FrankaVisualReacherConfig"``.
        field: the field name, e.g. ``"dt"``.
        value: the value it was given.
        requirement: what it must be, starting with "must", e.g. ``"must be a positive number of seconds"``.
        example: a valid value, or None.

    Example:
        >>> str(ConfigError("FrankaVisualReacherConfig", "dt", 0.0, "must be a positive number of seconds", 0.04))
        'FrankaVisualReacherConfig.dt=0.0: must be a positive number of seconds, e.g. dt=0.04'
    """

    def __init__(self, owner: str, field: str, value: object, requirement: str, example: object = None) -> None:
        self.owner, self.field, self.value, self.requirement, self.example = owner, field, value, requirement, example
        hint = "" if example is None else f", e.g. {field}={example!r}"
        super().__init__(f"{owner}.{field}={value!r}: {requirement}{hint}")
