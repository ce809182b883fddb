"""Versioned publishing of network weights (or any flat array) through shared memory.

The learner writes, the actor reads, and neither waits for the other. A double buffer guarded by
the project's seqlock (communicators/seqlock.py): the writer fills the slot the newest version is
NOT in, inside the slot's seqlock, then bumps the version. A reader copies the newest slot and
keeps the copy only if the seqlock says no writer touched it, so it never sees a half-written or
mixed set. A writer that died mid-write (a restarted learner) leaves the slot marked as being
written; the next publish recovers it.
"""
from __future__ import annotations

import numpy as np
import torch

from communicators.seqlock import SeqLock
from communicators.shared_memory import SharedArrays

_VERSION = 0  # header: newest version, the sequences of slots 0 and 1, their versions, their tags
_SEQUENCES = slice(1, 3)
_LABEL = 3
_TAG = 5


class VersionedArray:
    """A flat array published in versions: one writer process, any number of readers.

    Args:
        size: number of elements.
        dtype: element type.
        tag: label in the shared-memory segment name.
    """

    def __init__(self, size: int, dtype=np.float32, tag: str = "versioned"):
        self.size = int(size)
        self._shared = SharedArrays({"header": ((7,), np.int64), "data": ((2, self.size), dtype)}, tag=tag)
        self._attach()

    def _attach(self) -> None:
        self._header, self._data = self._shared["header"], self._shared["data"]
        self._seqlock = SeqLock(self._header[_SEQUENCES])

    def __getstate__(self) -> dict:
        return {"shared": self._shared, "size": self.size}

    def __setstate__(self, state: dict) -> None:
        self._shared, self.size = state["shared"], state["size"]
        self._attach()

    @property
    def version(self) -> int:
        """Newest published version; 0 before the first publish."""
        return int(self._header[_VERSION])

    def mid_write(self) -> bool:
        """True while a publish is inside a slot (or a writer died inside one, until the next publish)."""
        return self._seqlock.writing(0) or self._seqlock.writing(1)

    def publish(self, values: np.ndarray, tag: int = 0) -> int:
        """Writes a new version (writer process only). Returns its number (1, 2, ...).

        Args:
            values: the array, ``size`` elements.
            tag: an integer that travels with this version (the weights' update count, say).
        """
        version = int(self._header[_VERSION]) + 1
        slot = version % 2  # the slot readers of the current version are NOT reading
        self._seqlock.write_begin(slot)
        self._data[slot] = values
        self._header[_LABEL + slot] = version  # the slot's own label, read inside the seqlock
        self._header[_TAG + slot] = tag
        self._seqlock.write_end(slot)
        self._header[_VERSION] = version
        return version

    def read(self, out: np.ndarray, newer_than: int = 0, max_tries: int = 3) -> int | None:
        """Copies the newest version into ``out`` if it is newer than ``newer_than``. Never blocks.

        Returns:
            The version copied, or None if none is newer or no consistent copy was had in
            ``max_tries`` tries (the writer kept rewriting the slot); ``out`` is then unusable,
            so read into a scratch array.
        """
        read = self.read_tagged(out, newer_than, max_tries)
        return None if read is None else read[0]

    def read_tagged(self, out: np.ndarray, newer_than: int = 0, max_tries: int = 3) -> tuple[int, int] | None:
        """As :meth:`read`, returning ``(version, tag)`` of the copy (or None)."""
        def copy() -> tuple[int, int]:
            np.copyto(out, self._data[slot])
            # The slot may hold a newer version than we looked up (same parity): its own label says.
            return int(self._header[_LABEL + slot]), int(self._header[_TAG + slot])

        for _ in range(max_tries):
            version = int(self._header[_VERSION])
            if version <= newer_than:
                return None
            slot = version % 2
            clean, labelled = self._seqlock.try_read(slot, copy)
            if clean:
                return labelled
        return None

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory. Idempotent."""
        self._header = self._data = self._seqlock = None  # views must not outlive the mapping
        self._shared.close()


def flatten_state(state: dict[str, torch.Tensor]) -> np.ndarray:
    """A state dict as one float32 vector in its key order: the layout :class:`WeightPublisher` publishes."""
    return torch.cat([t.detach().reshape(-1).to("cpu", torch.float32) for t in state.values()]).numpy()


class WeightPublisher:
    """Publishes a module's weights from the learner; the actor pulls the newest between steps.

    Args:
        template: a state dict of the published module (e.g. ``agent.policy_state()``); fixes the
            names, shapes and order of the flat layout.
    """

    def __init__(self, template: dict[str, torch.Tensor]):
        self._names = list(template)
        self._shapes = [tuple(t.shape) for t in template.values()]
        self._sizes = [t.numel() for t in template.values()]
        self._array = VersionedArray(sum(self._sizes), np.float32, tag="weights")
        self._scratch: np.ndarray | None = None
        self.pulled_version = 0
        self.pulled_updates = 0
        """The update count the learner published with the weights last pulled."""

    def __getstate__(self) -> dict:
        return {"names": self._names, "shapes": self._shapes, "sizes": self._sizes, "array": self._array}

    def __setstate__(self, state: dict) -> None:
        self._names, self._shapes, self._sizes = state["names"], state["shapes"], state["sizes"]
        self._array, self._scratch, self.pulled_version, self.pulled_updates = state["array"], None, 0, 0

    @property
    def version(self) -> int:
        """Newest published version (0: none yet)."""
        return self._array.version

    def publish(self, state: dict[str, torch.Tensor], updates: int = 0) -> int:
        """Publishes a state dict with the template's names and shapes. Returns the version.

        Args:
            state: the module's state dict.
            updates: the learner's update count these weights are the result of (read back as
                ``pulled_updates``, so the actor knows how stale its weights are).
        """
        if list(state) != self._names:
            raise ValueError(f"published state has keys {list(state)[:4]}..., expected the template's "
                             f"{self._names[:4]}...")
        return self._array.publish(flatten_state(state), tag=int(updates))

    def publish_flat(self, values: np.ndarray, updates: int = 0) -> int:
        """Publishes weights already flattened by :func:`flatten_state` (e.g. received from a remote
        learner whose module has the template's layout). Returns the version.

        Raises:
            ValueError: ``values`` has another size than the template's.
        """
        if values.shape != (self._array.size,):
            raise ValueError(f"flat weights have shape {values.shape}, expected ({self._array.size},) as the "
                             f"template's; the learner's networks differ from the actor's")
        return self._array.publish(values, tag=int(updates))

    def pull(self, module: torch.nn.Module) -> int | None:
        """Loads the newest version into ``module`` if one newer than the last pull exists.

        Returns:
            The version loaded, or None (no newer version, or the writer was mid-write: the
            module keeps its weights, and the next pull tries again).
        """
        if self._scratch is None:
            self._scratch = np.empty(self._array.size, np.float32)
        read = self._array.read_tagged(self._scratch, newer_than=self.pulled_version)
        if read is None:
            return None
        version, updates = read
        flat = torch.from_numpy(self._scratch)
        tensors = dict(zip(self._names, (v.view(s) for v, s in zip(flat.split(self._sizes), self._shapes))))
        module.load_state_dict(tensors)
        self.pulled_version, self.pulled_updates = version, updates
        return version

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory."""
        self._array.close()
