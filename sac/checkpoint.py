"""Full training checkpoints you can always resume from.

A checkpoint is a directory ``<run>/model/step_<S>/`` holding ``agent.pt`` (networks, targets,
optimizers, temperature, update counter, agent RNGs), ``replay.npz`` (the replay buffer),
``trainer.pt`` (env step and episode counters, the loop's RNG states, the episode history) and
``order`` (its place in the save order). The rules:

* ``model/latest`` always names a complete checkpoint: each is written under a temporary name,
  every file and the directory fsynced, renamed into place, the parent fsynced, and only then is
  ``latest`` replaced (by rename, fsynced).
* Pruning keeps the newest ``keep`` checkpoints by save order (not by step number: a run may save
  a lower step after a higher one, e.g. a resumed earlier checkpoint) and never deletes the one
  ``latest`` names.
* Before writing, the free space is checked against the previous checkpoint's size plus a margin;
  a disk that fills anyway fails with :class:`~sac.errors.CheckpointError` naming the directory,
  the bytes needed and free. Either way the temporary files are removed and the previous
  checkpoint stays intact.
"""
from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sac.errors import CheckpointError

LATEST = "latest"
ORDER = "order"
MARGIN_BYTES = 8 * 2**20
"""Free space kept beyond the previous checkpoint's size (and needed for a first one)."""


def save_checkpoint(model_dir: str, step: int, write_parts: Callable[[str], None],
                    trainer_state: dict[str, Any], keep: int = 2) -> str:
    """Writes a complete checkpoint for env step ``step``; returns its directory.

    Args:
        model_dir: the run's ``model`` directory.
        step: env steps taken; names the checkpoint.
        write_parts: writes ``agent.pt`` and ``replay.npz`` into the directory it is given (the
            updater's :meth:`~sac.training.updaters.Updater.write_checkpoint`).
        trainer_state: counters and whatever else the loop needs to continue (picklable).
        keep: complete checkpoints kept, >= 1.

    Raises:
        CheckpointError: not enough space, or writing failed; the previous checkpoint is intact.
    """
    os.makedirs(model_dir, exist_ok=True)
    _remove_leftovers(model_dir)
    previous = latest_checkpoint(model_dir)
    needed = (_size(previous) if previous else 0) * 11 // 10 + MARGIN_BYTES
    _check_space(model_dir, needed, previous)
    tmp = os.path.join(model_dir, f".tmp_step_{step}_{os.getpid()}")
    final = os.path.join(model_dir, f"step_{step}")
    try:
        os.makedirs(tmp)
        write_parts(tmp)
        torch.save({**trainer_state, "rng": capture_global_rng()}, os.path.join(tmp, "trainer.pt"))
        with open(os.path.join(tmp, ORDER), "w") as f:
            f.write(f"{_next_order(model_dir)}\n")
        for name in os.listdir(tmp):
            _fsync_file(os.path.join(tmp, name))
        _fsync_dir(tmp)
        _move_into_place(tmp, final, model_dir)
        _point_latest_at(model_dir, os.path.basename(final))
    except (OSError, RuntimeError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(model_dir).free
        intact = f"the previous checkpoint {previous} is intact" if previous else "there is no earlier checkpoint"
        raise CheckpointError(f"writing the checkpoint of step {step} in {model_dir} failed ({err}); about "
                              f"{needed / 1e6:.0f} MB are needed and {free / 1e6:.0f} MB are free; {intact}") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(model_dir, keep)
    return final


def latest_checkpoint(model_dir: str) -> str | None:
    """Directory of the newest complete checkpoint, or None if there is none."""
    try:
        with open(os.path.join(model_dir, LATEST)) as f:
            name = f.read().strip()
    except FileNotFoundError:
        return None
    path = os.path.join(model_dir, name)
    return path if name and os.path.isdir(path) else None


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


def write_atomically(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` (fsynced, then renamed into place): a crash mid-write leaves the
    previous file intact."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def state_bytes(state: dict[str, Any]) -> bytes:
    """A state dict as ``torch.save`` bytes (plain bytes pass through pipes and Ray without torch's
    tensor-sharing strategies)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------- internals
def _check_space(model_dir: str, needed: int, previous: str | None) -> None:
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        intact = f"the previous checkpoint {previous} is intact" if previous else "there is no earlier checkpoint"
        raise CheckpointError(f"not enough free space in {model_dir} for a checkpoint: about {needed / 1e6:.0f} MB "
                              f"needed (the previous checkpoint's size plus a margin), {free / 1e6:.0f} MB free; "
                              f"{intact}. Free some space, then continue with --resume")


def _move_into_place(tmp: str, final: str, model_dir: str) -> None:
    old = None
    if os.path.exists(final):  # the same step saved again (a stop right after a periodic save)
        old = os.path.join(model_dir, f".tmp_old_{os.path.basename(final)}_{os.getpid()}")
        os.rename(final, old)  # set aside, not deleted, until the new one is in place
    os.rename(tmp, final)
    _fsync_dir(model_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _point_latest_at(model_dir: str, name: str) -> None:
    pointer = os.path.join(model_dir, f".tmp_{LATEST}_{os.getpid()}")
    with open(pointer, "w") as f:
        f.write(f"{name}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, os.path.join(model_dir, LATEST))
    _fsync_dir(model_dir)


def _checkpoints(model_dir: str) -> list[tuple[int, str]]:
    """(save order, name) of every complete checkpoint, oldest first."""
    found = []
    for name in os.listdir(model_dir):
        if name.startswith("step_") and os.path.isdir(os.path.join(model_dir, name)):
            try:
                with open(os.path.join(model_dir, name, ORDER)) as f:
                    order = int(f.read())
            except (OSError, ValueError):
                order = -1  # written before save order was recorded: older than any that has one
            found.append((order, name))
    return sorted(found)


def _next_order(model_dir: str) -> int:
    return max((order for order, _ in _checkpoints(model_dir)), default=0) + 1


def _prune(model_dir: str, keep: int) -> None:
    latest = latest_checkpoint(model_dir)
    protected = os.path.basename(latest) if latest else None
    ordered = [name for _, name in _checkpoints(model_dir)]
    for name in ordered[:-max(1, keep)]:
        if name != protected:
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)


def _remove_leftovers(model_dir: str) -> None:
    for name in os.listdir(model_dir):  # leftovers of a save that crashed
        if name.startswith(".tmp_"):
            path = os.path.join(model_dir, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def _fsync_file(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
