"""Errors of the environment layer (see ``communicators.errors`` for the common base)."""
from communicators.errors import RTRLError


class EnvError(RTRLError):
    """The environment cannot go on: a device process or the polling loop died, a stream went
    stale, or the arm could not reach its start pose. The message names the part and the cause."""
