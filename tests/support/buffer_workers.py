"""Child-process bodies for the SharedBuffer tests (module level, so spawn and forkserver can import them)."""

from __future__ import annotations

import time

import numpy as np

from communicators import SharedBuffer


def write_frames_and_read_command(frames: SharedBuffer, vector: SharedBuffer, command: SharedBuffer, conn) -> None:
    """Writes frames 1..3 and vectors [k, 2k, 3k], then sends back the first command the parent writes."""
    for k in (1, 2, 3):
        frames.write(np.full(frames.shape, k, np.uint8), timestamp=100.0 + k)
        vector.write(np.array([k, 2 * k, 3 * k], np.float64), timestamp=200.0 + k)
    conn.send("written")
    deadline = time.monotonic() + 20.0
    while not command.updated() and time.monotonic() < deadline:
        time.sleep(0.001)
    conn.send(command.read_update())


def read_update_once(buf: SharedBuffer, conn) -> None:
    """Waits for data, consumes it with read_update, reports what this reader's updated() says."""
    deadline = time.monotonic() + 20.0
    while not buf.updated() and time.monotonic() < deadline:
        time.sleep(0.001)
    _, _, idx = buf.read_update()
    conn.send((int(idx[-1]), buf.updated()))


def write_numbered(buf: SharedBuffer, writer_id: int, n: int, start) -> None:
    """Writes ``[writer_id, i]`` for i in 0..n-1, after ``start`` is set (so writers overlap)."""
    start.wait(20.0)
    for i in range(n):
        buf.write(np.array([writer_id, i], np.float64))


def write_uniform_patterns(buf: SharedBuffer, seconds: float) -> None:
    """Writes slots whose every element is the write number, as fast as it can, for ``seconds``."""
    pattern = np.zeros(buf.shape, buf.dtype)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        pattern.fill(k)
        buf.write(pattern, timestamp=float(k))
        k += 1


def wait_for_update_and_report(buffers: list[SharedBuffer], timeout: float, poll_s: float, conn) -> None:
    """Says "waiting", waits in ``wait_for_update``, then sends (result, seconds waited, each buffer's updated())."""
    from communicators.shared_buffer import wait_for_update

    conn.send("waiting")
    start = time.monotonic()
    result = wait_for_update(buffers, timeout, poll_s)
    conn.send((result, time.monotonic() - start, [buf.updated() for buf in buffers]))
