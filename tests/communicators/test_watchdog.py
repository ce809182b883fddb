"""The stale-command watchdog: the rule itself, and the Communicator base running it on the command
timestamps of a real child process."""

from __future__ import annotations

import doctest
import math
import time

import numpy as np
import pytest

from communicators import watchdog
from communicators.watchdog import CommandWatchdog
from tests.support.processes import wait_for
from tests.support.toy_communicators import CounterSensor

pytestmark = pytest.mark.timeout(60)
ECHO = slice(CounterSensor.HEADER, None)  # the command echo in a CounterSensor reading
TIMEOUTS = 2  # index of the on_command_timeout count in a CounterSensor reading


def test_commands_are_stale_before_the_first_and_after_the_timeout_by_their_stamp():
    dog = CommandWatchdog(timeout=0.1)
    assert dog.is_stale(0.0)
    dog.command_arrived(timestamp=10.0)
    assert not dog.is_stale(10.1) and dog.is_stale(10.1001)
    assert dog.command_time == 10.0


def test_a_stale_spell_counts_one_trip_however_long_it_lasts():
    dog = CommandWatchdog(timeout=0.1)
    assert dog.check(0.0) and dog.trips == 0, "the spell before the first command is not a trip"
    dog.command_arrived(1.0)
    assert not dog.check(1.05)
    assert all(dog.check(t) for t in (1.2, 1.3, 1.4)) and dog.trips == 1
    dog.command_arrived(1.5)
    assert not dog.check(1.5) and dog.check(2.0) and dog.trips == 2


def test_without_a_timeout_only_no_command_yet_is_stale():
    dog = CommandWatchdog(timeout=None)
    assert dog.is_stale(0.0)
    dog.command_arrived(0.0)
    assert not dog.is_stale(1e9)


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan, math.inf])
def test_a_bad_timeout_is_refused_by_value(timeout):
    with pytest.raises(ValueError, match=rf"timeout={timeout!r} must be positive seconds"):
        CommandWatchdog(timeout)


def test_docstring_example_runs():
    assert doctest.testmod(watchdog).failed == 0


# ----- in the Communicator base, in a real child -----

@pytest.fixture
def sensor():
    comm = CounterSensor(rate_hz=200.0, actuator_timeout=0.2)
    comm.start()
    wait_for(lambda: comm.sensor_buffer.num_writes > 0, what="the first reading")
    yield comm
    comm.close()


def test_a_command_already_older_than_the_timeout_is_never_sent(sensor):
    sensor.actuator_buffer.write(np.array([0.5, 0.5]), timestamp=time.monotonic() - 1.0)
    time.sleep(0.3)
    data, _, _ = sensor.sensor_buffer.read(8)
    assert np.all(data[:, ECHO] == 0), "a stale command reached the device"
    assert data[-1, TIMEOUTS] > 0, "on_command_timeout did not run instead"


def test_a_fresh_command_is_sent_then_stops_once_its_stamp_is_older_than_the_timeout(sensor):
    stamp = time.monotonic()
    sensor.actuator_buffer.write(np.array([0.5, 0.5]), timestamp=stamp)
    wait_for(lambda: sensor.sensor_buffer.latest()[0][ECHO][0] == 0.5, timeout=5, what="the command's echo")
    wait_for(lambda: sensor.sensor_buffer.latest()[0][ECHO][0] == 0.0, timeout=5, what="the watchdog's zero")
    assert time.monotonic() - stamp >= 0.2
    assert wait_for(lambda: sensor.overruns()["watchdog_trips"] == 1, timeout=2, what="one trip")


def test_a_command_stamped_on_another_clock_counts_from_its_arrival_and_still_goes_stale(sensor):
    sensor.actuator_buffer.write(np.array([0.5, 0.5]), timestamp=time.time())  # far in the monotonic future
    wait_for(lambda: sensor.sensor_buffer.latest()[0][ECHO][0] == 0.5, timeout=5, what="the command's echo")
    wait_for(lambda: sensor.sensor_buffer.latest()[0][ECHO][0] == 0.0, timeout=5,
             what="the watchdog's zero for a command from another clock")
