"""Full training checkpoints, written atomically.

A checkpoint is a directory ``<run>/model/step_<S>/`` holding ``agent.pt`` (networks, targets,
optimizers, temperature, update counter, agent RNGs), ``replay.npz`` (the replay buffer) and
``trainer.pt`` (env step and episode counters, the training loop's RNG states, the episode
history). It is written under a temporary name and renamed when complete, then ``model/latest``
is replaced (also by rename) to point at it: a crash mid-save leaves the previous checkpoint and
the pointer intact.
"""
from __future__ import annotations

import os
import random
import shutil
from typing import Any, Callable

import numpy as np
import torch

LATEST = "latest"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(model_dir: str, step: int, write_agent: Callable[[str], None], replay,
                    trainer_state: dict[str, Any], keep: int = 2) -> str:
    """Writes a complete checkpoint for env step ``step``; returns its directory.

    Args:
        model_dir: the run's ``model`` directory.
        step: env steps taken; names the checkpoint.
        write_agent: writes the full agent state to the path it is given (serial mode:
            ``torch.save(agent.state_dict(), path)``; async mode: ``learner.save_agent``).
        replay: the replay buffer (``save(path)``).
        trainer_state: counters and whatever else the loop needs to continue (picklable).
        keep: complete checkpoints kept; older ones are deleted after the new one is in place.
    """
    os.makedirs(model_dir, exist_ok=True)
    for name in os.listdir(model_dir):  # leftovers of a save that crashed
        if name.startswith(".tmp_"):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
    tmp = os.path.join(model_dir, f".tmp_step_{step}_{os.getpid()}")
    os.makedirs(tmp)
    write_agent(os.path.join(tmp, "agent.pt"))
    replay.save(os.path.join(tmp, "replay.npz"))
    torch.save({**trainer_state, "rng": capture_global_rng()}, os.path.join(tmp, "trainer.pt"))
    for name in os.listdir(tmp):
        with open(os.path.join(tmp, name), "rb") as f:
            os.fsync(f.fileno())
    final = os.path.join(model_dir, f"step_{step}")
    if os.path.exists(final):  # the same step saved twice (Ctrl-C right after a periodic save)
        shutil.rmtree(final)
    os.rename(tmp, final)
    pointer = os.path.join(model_dir, f".tmp_{LATEST}")
    with open(pointer, "w") as f:
        f.write(f"step_{step}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, os.path.join(model_dir, LATEST))
    _fsync_dir(model_dir)
    steps = sorted(int(n[5:]) for n in os.listdir(model_dir) if n.startswith("step_") and n[5:].isdigit())
    for old in steps[:-keep]:
        shutil.rmtree(os.path.join(model_dir, f"step_{old}"), ignore_errors=True)
    return final


def latest_checkpoint(model_dir: str) -> str | None:
    """Directory of the newest complete checkpoint, or None if there is none."""
    try:
        with open(os.path.join(model_dir, LATEST)) as f:
            name = f.read().strip()
    except FileNotFoundError:
        return None
    path = os.path.join(model_dir, name)
    return path if os.path.isdir(path) else None


def load_trainer_state(checkpoint_dir: str) -> dict[str, Any]:
    """The trainer state of a checkpoint; also restores the global RNGs it captured."""
    state = torch.load(os.path.join(checkpoint_dir, "trainer.pt"), weights_only=False)
    restore_global_rng(state.pop("rng"))
    return state


def capture_global_rng() -> dict[str, Any]:
    """States of Python's, numpy's and torch's global RNGs."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_global_rng(state: dict[str, Any]) -> None:
    """Restores what :func:`capture_global_rng` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
