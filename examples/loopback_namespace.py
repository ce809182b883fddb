"""Run this process in a network namespace of its own, with only the loopback interface up.

Everything here that talks over a network in tests and benchmarks (a ROS master, DDS, Ray) must
send nothing to any other address: DDS discovers peers by multicast on every interface, and a Ray
head probes cloud metadata addresses when it starts. Inside a fresh network namespace the only
interface is ``lo`` (all of 127.0.0.0/8 answers there), so no packet can leave the machine.
``conftest.py`` moves the whole test session in at start-up, so every child inherits it; a
benchmark calls :func:`enter_loopback_namespace` first thing in its ``main``.

Needs root or CAP_SYS_ADMIN (CI runs as root).
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913


def enter_loopback_namespace() -> None:
    """Moves the calling process into a new network namespace and brings ``lo`` up.

    Call it before the process starts threads or children: only the calling thread moves, and
    whatever it starts afterwards inherits the namespace. Idempotent.

    Raises:
        PermissionError: not root / no CAP_SYS_ADMIN; the message says how to run instead.
    """
    if in_loopback_namespace():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise PermissionError(err, f"cannot create a loopback-only network namespace ({os.strerror(err)}); "
                                   "tests and benchmarks that talk over a network need it: run them as root "
                                   "(or with CAP_SYS_ADMIN), e.g. sudo make test")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def in_loopback_namespace() -> bool:
    """True if loopback is the only network interface this process sees, and it is up."""
    # /proc/self/net is per network namespace (unlike /sys/class/net, which shows sysfs's mounter's).
    with open("/proc/self/net/dev") as f:
        names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    if names != ["lo"]:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request))[1]
    return bool(flags & 0x1)  # IFF_UP


def reaches_outside(address: str = "192.0.2.1", port: int = 9) -> bool:
    """Whether a TCP connection to a non-loopback address can even be attempted (TEST-NET-1 by default).

    In the loopback namespace the kernel refuses at once ("network is unreachable"); outside it,
    the attempt goes out (and times out or is refused).
    """
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError as err:
        return err.errno != 101  # ENETUNREACH: no route off the machine
