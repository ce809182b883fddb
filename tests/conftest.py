"""Session-wide test plumbing: remembers every process the session starts, and checks for leftovers last.

Every pid started through multiprocessing or subprocess is registered, so tests/test_no_leftovers.py
can tell this session's shared-memory segments (named after their creator's pid) from those of
other test sessions running on the same machine. Registering only records a pid; nothing else changes.
"""

from __future__ import annotations

import subprocess
from multiprocessing.process import BaseProcess

from tests.support.processes import register_pid

_LAST = "test_no_leftovers.py"


def _record_pids() -> None:
    start, popen_init = BaseProcess.start, subprocess.Popen.__init__
    if getattr(start, "_records_pids", False):
        return

    def recording_start(self, *args, **kwargs):
        start(self, *args, **kwargs)
        register_pid(self.pid)

    def recording_popen_init(self, *args, **kwargs):
        popen_init(self, *args, **kwargs)
        register_pid(self.pid)

    recording_start._records_pids = True
    BaseProcess.start = recording_start
    subprocess.Popen.__init__ = recording_popen_init


def pytest_configure(config) -> None:
    _record_pids()


def pytest_collection_modifyitems(session, config, items) -> None:
    # The leftover check must see the whole session, whatever order the files were given in.
    items.sort(key=lambda item: item.path.name == _LAST)
