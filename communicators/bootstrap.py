"""How a communicator's child reports a failure that happens before its ``run()`` begins.

Under spawn and forkserver (the only start methods communicators default to), a child re-imports
the parent's main script before it unpickles the communicator. A script that creates its env at
top level, without ``if __name__ == "__main__":``, starts processes again during that re-import;
multiprocessing then raises "An attempt has been made to start a new process before the current
process has finished its bootstrapping phase" in the child, which dies with exit code 1 before
any communicator code runs. Its traceback went to the child's stderr only, and the parent said
"exited with code 1 without reporting an error".

The one thing a child knows of its parent during bootstrap is its process name (multiprocessing
sets it before re-importing the script). So the parent appends a report path to the name while it
launches the child (:func:`tagged_name`); when the child's script imports this package, an
exception hook is installed that writes the bootstrap traceback to that path; and the parent
reads it (:func:`read_report`) and turns it into a message that names the fix
(:func:`explain`). Nothing is written when the child starts normally, so no file is left.

Example:
    >>> name = tagged_name("robot (FrankaSimCommunicator)", "/tmp/rtrl_boot_1_2.txt")
    >>> clean_name(name)
    'robot (FrankaSimCommunicator)'
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import traceback
from pathlib import Path

_TAG = "\x1frtrl-bootstrap-report:"
_GUARD_ERROR = "before the current process has finished its bootstrapping phase"
GUARD_FIX = ('create the env under `if __name__ == "__main__":` (communicators start with spawn/forkserver, '
             "which re-import your script)")
"""The fix for a missing main guard, as every message states it."""


def report_path(owner_pid: int, serial: int) -> str:
    """Where the child of communicator ``serial`` of process ``owner_pid`` reports a bootstrap failure."""
    return os.path.join(tempfile.gettempdir(), f"rtrl_bootstrap_{owner_pid}_{serial}.txt")


def tagged_name(name: str, path: str) -> str:
    """The process name to launch a child under, so its bootstrap can find ``path``."""
    return f"{clean_name(name)}{_TAG}{path}"


def clean_name(name: str) -> str:
    """``name`` without the report tag."""
    return name.split(_TAG, 1)[0]


def install_reporter() -> None:
    """Installs the exception hook in a child that is still bootstrapping (a no-op elsewhere).

    Runs in the child, when its re-imported main script imports ``communicators``.
    """
    process = multiprocessing.current_process()
    if not getattr(process, "_inheriting", False) or _TAG not in process.name:
        return
    path = process.name.split(_TAG, 1)[1]
    previous = sys.excepthook

    def report_then_print(exc_type, exc, tb) -> None:  # noqa: ANN001 - sys.excepthook's signature
        try:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            Path(path).write_text(text, encoding="utf-8")
        except OSError:
            pass  # the parent still says the child died before its run() began
        previous(exc_type, exc, tb)

    sys.excepthook = report_then_print


def read_report(path: str, remove: bool = False) -> str:
    """The bootstrap traceback the child wrote to ``path``, or "" if it wrote none."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    if remove:
        Path(path).unlink(missing_ok=True)
    return text


def explain(name: str, code: int | None, report: str) -> str:
    """The parent's one-line cause for a child that died before its ``run()`` began, plus its traceback."""
    main = getattr(sys.modules.get("__main__"), "__file__", None) or "your main script"
    if _GUARD_ERROR in " ".join(report.split()):  # multiprocessing wraps its message over lines
        return (f"communicator {name!r} could not start: its process re-imported {main} and that import "
                f"started processes again; {GUARD_FIX}. The child's traceback:\n{report}")
    if report:
        return (f"communicator {name!r} failed while its process started (re-importing {main}), before its "
                f"run() began; the child's traceback:\n{report}")
    return (f"communicator {name!r} exited with code {code} before its run() began: its process failed while "
            f"starting (its stderr has the traceback); if {main} creates the env at import, {GUARD_FIX}")
