"""Our watchdog on the remote learner: quiet within budget, one warning past it, back-to-normal
said once, and past the stop budget a LearnerError naming the learner, the time and the cause."""
from __future__ import annotations

import io
import re

import pytest

from sac.errors import LearnerError
from sac.remote.watchdog import LearnerWatchdog


def test_the_watchdog_warns_once_says_when_learning_is_back_and_stops_past_its_budget():
    out = io.StringIO()
    dog = LearnerWatchdog("lab", warn_after_s=3, stop_after_s=30, out=out)
    dog.check(2.9, "cause")
    assert out.getvalue() == ""
    dog.check(3.5, "the learner has not answered for 3.5 s")
    dog.check(10.0, "the learner has not answered for 10.0 s")
    assert out.getvalue().count("warning:") == 1 and "'lab' for 3.5 s" in out.getvalue()
    dog.check(0.1, "")
    assert out.getvalue().endswith("the learner 'lab' shows progress again\n") and dog.warnings == 1
    with pytest.raises(LearnerError, match=re.escape("no new weights from the learner 'lab' for 30.0 s (its node "
                                                     "died); the watchdog stops the run at 30 s")):
        dog.check(30.0, "its node died")


def test_the_watchdog_docstring_example_runs():
    import doctest

    from sac.remote import watchdog

    assert doctest.testmod(watchdog).failed == 0
