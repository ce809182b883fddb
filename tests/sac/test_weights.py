"""Versioned weight publishing: a reader never sees a half-written or mixed set of weights."""
from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest
import torch

from sac.weights import VersionedArray, WeightPublisher

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_leaked_segments")]


def _publish_patterns(array: VersionedArray, seconds: float, size: int) -> None:
    # Version v is the array filled with v: any mix of two versions is visible as unequal values.
    deadline = time.monotonic() + seconds
    v = array.version
    while time.monotonic() < deadline:
        v += 1
        array.publish(np.full(size, v, np.float32))
    array.close()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_reader_never_sees_a_mixed_version_while_a_writer_publishes_flat_out(method):
    size = 1 << 16  # 256 KB: a copy takes long enough for the writer to overtake it
    array = VersionedArray(size, np.float32, tag="test")
    writer = multiprocessing.get_context(method).Process(target=_publish_patterns, args=(array, 3.0, size))
    out = np.empty(size, np.float32)
    reads, failures, last = 0, 0, 0
    try:
        writer.start()
        while writer.is_alive() or array.version == 0:
            version = array.read(out, newer_than=last)
            if version is None:
                failures += writer.is_alive() and array.version > last
                continue
            assert out.min() == out.max() == version, f"mixed set: {out.min()}..{out.max()} as {version}"
            assert version > last  # versions only move forward
            last, reads = version, reads + 1
    finally:
        writer.join(10)
        array.close()
    assert writer.exitcode == 0
    assert reads > 50, f"only {reads} consistent reads ({failures} gave up)"


def test_pull_loads_the_newest_weights_once_and_keeps_them_when_nothing_is_new():
    source, target = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    publisher = WeightPublisher(source.state_dict())
    try:
        assert publisher.pull(target) is None  # nothing published yet: keep own weights
        with torch.no_grad():
            source.weight.fill_(2.0)
        assert publisher.publish(source.state_dict()) == 1
        assert publisher.pull(target) == 1
        torch.testing.assert_close(target.weight, source.weight)
        torch.testing.assert_close(target.bias, source.bias)
        assert publisher.pull(target) is None  # already have version 1
        publisher.publish(source.state_dict())
        publisher.publish(source.state_dict())
        assert publisher.pull(target) == 3  # straight to the newest
    finally:
        publisher.close()


def test_publishing_a_state_with_other_keys_is_refused():
    publisher = WeightPublisher(torch.nn.Linear(2, 2).state_dict())
    try:
        with pytest.raises(ValueError, match="expected the template's"):
            publisher.publish(torch.nn.Linear(2, 2, bias=False).state_dict())
    finally:
        publisher.close()


def _publish_forever(array: VersionedArray, size: int) -> None:
    values = np.ones(size, np.float32)
    while True:
        array.publish(values)


def test_a_new_writer_after_one_killed_mid_write_publishes_versions_readers_accept():
    # A restarted learner takes over the weights of one SIGKILLed while writing a slot.
    size = 1 << 24  # 64 MB: a copy takes milliseconds, so the kill lands inside one
    array = VersionedArray(size, np.float32, tag="test")
    out = np.empty(size, np.float32)
    try:
        for _ in range(5):
            writer = multiprocessing.get_context("fork").Process(target=_publish_forever, args=(array, size))
            writer.start()
            while not array.mid_write():
                pass
            writer.kill()
            writer.join(10)
            if array.mid_write():
                break
        assert array.mid_write(), "could not kill the writer mid-write in 5 tries"
        last = array.version
        for value in (2.0, 3.0, 4.0):  # both slots, the interrupted one among them
            version = array.publish(np.full(size, value, np.float32))
            assert array.read(out, newer_than=last) == version
            assert out.min() == out.max() == value
            last = version
        assert not array.mid_write()
    finally:
        array.close()


def test_the_update_count_travels_with_the_weights_it_belongs_to():
    source = torch.nn.Linear(3, 2)
    publisher = WeightPublisher(source.state_dict())
    try:
        target = torch.nn.Linear(3, 2)
        publisher.publish(source.state_dict(), updates=41)
        assert publisher.pull(target) == 1 and publisher.pulled_updates == 41
        publisher.publish(source.state_dict(), updates=57)
        assert publisher.pull(target) == 2 and publisher.pulled_updates == 57
        assert publisher.pull(target) is None and publisher.pulled_updates == 57  # nothing newer: unchanged
    finally:
        publisher.close()
