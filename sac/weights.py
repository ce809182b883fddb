"""Versioned publishing of network weights (or any flat array) through shared memory.

The learner writes, the actor reads, and neither waits for the other. A double buffer with a
sequence number per slot (a seqlock): the writer fills the slot the newest version is NOT in,
with the slot's sequence odd while it writes, then bumps the version. A reader copies the newest
slot and keeps the copy only if the slot's sequence was even and unchanged across the copy, so it
never sees a half-written or mixed set. Ordering relies on x86's in-order stores and loads
(total store order), as every process here runs on x86-64; ARM would need explicit fences.
"""
from __future__ import annotations

import numpy as np
import torch

from communicators.shared_memory import SharedArrays

_VERSION = 0  # header: newest version, then (sequence, version) of slot 0 and of slot 1


class VersionedArray:
    """A flat array published in versions: one writer process, any number of readers.

    Args:
        size: number of elements.
        dtype: element type.
        tag: label in the shared-memory segment name.
    """

    def __init__(self, size: int, dtype=np.float32, tag: str = "versioned"):
        self.size = int(size)
        self._shared = SharedArrays({"header": ((5,), np.int64), "data": ((2, self.size), dtype)}, tag=tag)
        self._header, self._data = self._shared["header"], self._shared["data"]

    def __getstate__(self) -> dict:
        return {"shared": self._shared, "size": self.size}

    def __setstate__(self, state: dict) -> None:
        self._shared, self.size = state["shared"], state["size"]
        self._header, self._data = self._shared["header"], self._shared["data"]

    @property
    def version(self) -> int:
        """Newest published version; 0 before the first publish."""
        return int(self._header[_VERSION])

    def publish(self, values: np.ndarray) -> int:
        """Writes a new version (writer process only). Returns its number (1, 2, ...)."""
        version = int(self._header[_VERSION]) + 1
        slot = version % 2  # the slot readers of the current version are NOT reading
        sequence = int(self._header[1 + slot])
        # Odd: slot being written. Already odd if a previous writer died mid-write (a restarted
        # learner): step to the next odd number, so "even" still means "complete" afterwards.
        self._header[1 + slot] = sequence + 1 + sequence % 2
        self._data[slot] = values
        self._header[3 + slot] = version  # the slot's own label, read inside the seqlock
        self._header[1 + slot] += 1  # even: slot complete
        self._header[_VERSION] = version
        return version

    def read(self, out: np.ndarray, newer_than: int = 0, max_tries: int = 3) -> int | None:
        """Copies the newest version into ``out`` if it is newer than ``newer_than``. Never blocks.

        Returns:
            The version copied, or None if none is newer or no consistent copy was had in
            ``max_tries`` tries (the writer kept rewriting the slot); ``out`` is then unusable,
            so read into a scratch array.
        """
        for _ in range(max_tries):
            version = int(self._header[_VERSION])
            if version <= newer_than:
                return None
            slot = version % 2
            before = int(self._header[1 + slot])
            if before % 2:
                continue  # the writer is already reusing this slot for a newer version
            np.copyto(out, self._data[slot])
            # The slot may hold a newer version than we looked up (same parity): its own label says.
            label = int(self._header[3 + slot])
            if int(self._header[1 + slot]) == before:
                return label
        return None

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory. Idempotent."""
        self._header = self._data = None  # views must not outlive the mapping
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

    def __getstate__(self) -> dict:
        return {"names": self._names, "shapes": self._shapes, "sizes": self._sizes, "array": self._array}

    def __setstate__(self, state: dict) -> None:
        self._names, self._shapes, self._sizes = state["names"], state["shapes"], state["sizes"]
        self._array, self._scratch, self.pulled_version = state["array"], None, 0

    @property
    def version(self) -> int:
        """Newest published version (0: none yet)."""
        return self._array.version

    def publish(self, state: dict[str, torch.Tensor]) -> int:
        """Publishes a state dict with the template's names and shapes. Returns the version."""
        if list(state) != self._names:
            raise ValueError(f"published state has keys {list(state)[:4]}..., expected the template's "
                             f"{self._names[:4]}...")
        return self._array.publish(flatten_state(state))

    def publish_flat(self, values: np.ndarray) -> int:
        """Publishes weights already flattened by :func:`flatten_state` (e.g. received from a remote
        learner whose module has the template's layout). Returns the version.

        Raises:
            ValueError: ``values`` has another size than the template's.
        """
        if values.shape != (self._array.size,):
            raise ValueError(f"flat weights have shape {values.shape}, expected ({self._array.size},) as the "
                             f"template's; the learner's networks differ from the actor's")
        return self._array.publish(values)

    def pull(self, module: torch.nn.Module) -> int | None:
        """Loads the newest version into ``module`` if one newer than the last pull exists.

        Returns:
            The version loaded, or None (no newer version, or the writer was mid-write: the
            module keeps its weights, and the next pull tries again).
        """
        if self._scratch is None:
            self._scratch = np.empty(self._array.size, np.float32)
        version = self._array.read(self._scratch, newer_than=self.pulled_version)
        if version is None:
            return None
        flat = torch.from_numpy(self._scratch)
        tensors = dict(zip(self._names, (v.view(s) for v, s in zip(flat.split(self._sizes), self._shapes))))
        module.load_state_dict(tensors)
        self.pulled_version = version
        return version

    def close(self) -> None:
        """Detaches; the creating process also frees the shared memory."""
        self._array.close()
