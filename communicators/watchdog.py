"""The stale-command watchdog: the one rule for when a device must stop following its commands.

A command is fresh from the moment its writer stamped it (``time.monotonic()`` seconds, the
timestamp of its actuator-buffer slot) for ``timeout`` seconds; before the first command, and once
the newest is older than that, commands are stale and a robot must come to rest. Judging by the
writer's stamp, not by when the device noticed the command, means a command that sat unread (a
stalled loop) is never followed late.

The Communicator base runs it on every actuator tick (``on_command_timeout`` replaces
``send_command`` while stale); the libfranka 1 kHz loop's velocity shaper runs the same rule to
ramp to rest instead of stepping.

Example:
    >>> dog = CommandWatchdog(timeout=0.1)
    >>> dog.is_stale(now=5.0)              # no command yet
    True
    >>> dog.command_arrived(timestamp=5.0)
    >>> dog.is_stale(now=5.05), dog.is_stale(now=5.2)
    (False, True)
"""

from __future__ import annotations

import math


class CommandWatchdog:
    """Tracks the newest command's timestamp and says when commands are stale.

    Not thread-safe for several writers; one loop feeds it (others may read ``is_stale``).

    Args:
        timeout: seconds a command stays fresh; None: a command never goes stale (only "no
            command yet" is stale).
    """

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout={timeout!r} must be positive seconds, or None to disable")
        self.timeout = timeout
        self.command_time = -math.inf
        """Timestamp of the newest command seen, ``time.monotonic()`` s (-inf before the first)."""
        self.trips = 0
        """Times commands went from fresh to stale (each stale spell counts once)."""
        self._stale = True

    def command_arrived(self, timestamp: float) -> None:
        """Records a new command stamped ``timestamp`` (``time.monotonic()`` s)."""
        self.command_time = float(timestamp)

    def is_stale(self, now: float) -> bool:
        """True if no command is fresh at ``now`` (``time.monotonic()`` s)."""
        if self.command_time == -math.inf:
            return True
        return self.timeout is not None and now - self.command_time > self.timeout

    def check(self, now: float) -> bool:
        """Like :meth:`is_stale`, and counts a trip when commands have just gone stale."""
        stale = self.is_stale(now)
        if stale and not self._stale:
            self.trips += 1
        self._stale = stale
        return stale
