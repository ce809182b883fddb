"""Errors of the learning layer (see ``communicators.errors`` for the common base)."""
from communicators.errors import RTRLError


class ReplayBufferError(RTRLError):
    """The replay buffer cannot be built or used: too big for RAM, wrong shapes, too few samples."""


class LearnerError(RTRLError):
    """The asynchronous learner process failed; the message carries its traceback."""
