"""The outbox between the action cycle and the bridge: transitions arrive whole and in order in
another process, a full outbox drops (and counts) instead of waiting, and slots are reused."""
from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from gymnasium import spaces

from sac.remote.outbox import TransitionOutbox, batch_transitions

SPACE = spaces.Dict({"image": spaces.Box(0, 255, (6, 8, 10), np.uint8),
                     "proprioception": spaces.Box(-np.inf, np.inf, (4,), np.float32)})


def transition(i: int) -> tuple:
    obs = {"image": np.full((6, 8, 10), i % 256, np.uint8), "proprioception": np.full(4, i, np.float32)}
    nxt = {"image": np.full((6, 8, 10), (i + 1) % 256, np.uint8), "proprioception": np.full(4, i + 1, np.float32)}
    return obs, np.full(2, i / 1000, np.float32), float(i), nxt, i % 7 == 0, {"period": 0.04 + i / 1e4}


def _drain(outbox: TransitionOutbox, total: int, out) -> None:
    got = []
    while len(got) < total:
        taken = outbox.take(16)
        if taken is None:
            continue
        first, batch = taken
        for j, (obs, action, reward, nxt, terminated, extras) in enumerate(
                batch_transitions(batch, outbox.keys, outbox.extras)):
            i = first + j
            ok = (reward == i and obs["image"].min() == obs["image"].max() == i % 256
                  and nxt["proprioception"][0] == i + 1 and terminated == (i % 7 == 0)
                  and extras == {"period": pytest.approx(0.04 + i / 1e4)})
            got.append(i if ok else -1)
    out.send(got)


@pytest.mark.timeout(60)
def test_a_bridge_process_takes_every_transition_whole_and_in_order_while_the_actor_writes():
    outbox = TransitionOutbox(SPACE, action_dim=2, capacity=32, extras=("period",))
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=_drain, args=(outbox, 500, send))
    reader.start()
    put = 0
    while put < 500:  # the actor retries only in this test; the training loop never does
        if outbox.put(*transition(put)):
            put += 1
    assert recv.poll(30), "the reader did not finish"
    assert recv.recv() == list(range(500))
    reader.join(10)
    outbox.close()


def test_a_full_outbox_drops_and_counts_new_transitions_and_takes_again_after_a_take():
    outbox = TransitionOutbox(SPACE, action_dim=2, capacity=3, extras=("period",))
    assert [outbox.put(*transition(i)) for i in range(5)] == [True, True, True, False, False]
    assert outbox.dropped == 2 and outbox.pending == 3
    first, batch = outbox.take(2)
    assert first == 0 and batch["reward"].tolist() == [0.0, 1.0]
    assert outbox.put(*transition(9))
    first, batch = outbox.take(10)
    assert first == 2 and batch["reward"].tolist() == [2.0, 9.0] and outbox.take(10) is None
    outbox.set_env_step(42)
    assert outbox.env_step == 42
    outbox.close()


def test_the_outbox_docstring_example_runs():
    import doctest

    from sac.remote import outbox

    assert doctest.testmod(outbox).failed == 0
