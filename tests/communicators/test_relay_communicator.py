"""RelayCommunicator in a real child process over real shared memory: each reading of the source is
passed on once, with the source's timestamp, including one written before the relay started."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

from communicators import relay_communicator
from communicators.relay_communicator import RelayCommunicator
from communicators.shared_buffer import SharedBuffer
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def source():
    buffer = SharedBuffer(shape=(3,), dtype=np.float64, buffer_len=4)
    yield buffer
    buffer.close()


def test_docstring_example_runs():
    assert doctest.testmod(relay_communicator).failed == 0


def test_each_reading_is_relayed_once_with_its_source_timestamp(source):
    source.write(np.array([1.0, 0.0, 0.0]), timestamp=100.0)  # before the relay's process exists
    relay = RelayCommunicator(source, rate_hz=200.0)
    relay.start()
    try:
        wait_for(lambda: relay.sensor_buffer.num_writes >= 1, timeout=20, what="the first relayed reading")
        for k in range(2, 6):
            source.write(np.array([float(k), 0.0, 0.0]), timestamp=100.0 + k)
            wait_for(lambda: relay.sensor_buffer.num_writes >= k, timeout=10, what=f"reading {k}")
        # Twenty more polls with nothing new: nothing is published twice.
        polls = relay.overruns()["sensor_cycles"]
        wait_for(lambda: relay.overruns()["sensor_cycles"] >= polls + 20, timeout=10, what="more polls")
        data, stamps, indices = relay.sensor_buffer.read(4)
        assert data[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0] and stamps.tolist() == [102.0, 103.0, 104.0, 105.0]
        assert relay.sensor_buffer.num_writes == 5
        assert relay.sensor_buffer.shape == (3,) and relay.sensor_buffer.dtype == np.float64
        assert relay.expected_period_s == pytest.approx(1 / 200.0)
    finally:
        relay.close()


def test_a_relay_needs_a_shared_buffer():
    with pytest.raises(TypeError, match="RelayCommunicator source must be a communicator's SharedBuffer, got ndarray"):
        RelayCommunicator(np.zeros(3))
