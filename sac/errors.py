"""Errors of the learning layer (see ``communicators.errors`` for the common base)."""
from communicators.errors import RTRLError


class ReplayBufferError(RTRLError):
    """The replay buffer cannot be built or used: too big for RAM, wrong shapes, too few samples."""


class LearnerError(RTRLError):
    """The asynchronous learner process failed; the message carries its traceback."""


class CheckpointError(RTRLError):
    """A checkpoint could not be written (no space, an I/O error) or read; the message names the
    directory, and a failed write leaves the previous checkpoint intact."""
