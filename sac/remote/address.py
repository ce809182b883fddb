"""Checks of a Ray address and a learner name, light enough for the command line (no torch, no Ray).

The command line runs them before anything starts (sac/training/build.py), so a typo in
``--ray_address`` is one line naming the flag, not a bridge that fails after the devices started.
"""
from __future__ import annotations

import ipaddress
import re
import socket

from communicators.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9._=*-]{1,120}$")


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` of a Ray head's GCS (``ray start --head --port PORT``) as (host, port).

    Raises:
        ConfigError: not HOST:PORT, or the port is not in 1..65535 (``field`` "ray_address").
    """
    def bad(requirement: str) -> ConfigError:
        return ConfigError("RemoteLearnerConfig", "ray_address", address, requirement, "192.168.1.10:6379")

    if not isinstance(address, str) or "://" in address:
        raise bad("must be HOST:PORT of the Ray head (what `ray start --head` prints), without a scheme")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise bad("must be HOST:PORT of the Ray head (what `ray start --head` prints)")
    if not 1 <= int(port) <= 65535:
        raise bad(f"has port {port}; a port is in 1..65535 (Ray's head uses 6379 by default)")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", host):
            raise bad(f"has host {host!r}, which is neither an IP address nor a host name") from None
    return host, int(port)


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Checks that something accepts TCP connections at ``address`` (the head's GCS port).

    Raises:
        ConfigError: the host does not resolve or nothing answers there (``field`` "ray_address").
    """
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError("RemoteLearnerConfig", "ray_address", address,
                          f"no Ray head answers there ({reason}); start one with `ray start --head "
                          f"--node-ip-address=<its address> --port={port}` (docs/remote-learner.md), or fix the "
                          f"address") from None


def check_name(name: str, field_name: str = "ray_learner") -> None:
    """A learner name: letters, digits and ``. _ - = *``, at most 120 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("RemoteLearnerConfig", field_name, name,
                          "must be letters, digits and . _ - = * (at most 120 characters)", "reacher_lab1")
