"""Strict checking of the actions ``step`` takes: real numbers of the right shape, inside the space.

Only a float or integer array (numpy, or anything that converts to one, such as a torch tensor
without grad) or a (nested) sequence of Python numbers passes. Everything numpy would quietly
convert is refused with the dtype and what to pass instead: ``["0.5", "0.5"]`` (strings) would
become ``[0.5, 0.5]``, ``np.array([True, False])`` would become full speed on the first joint, a
complex array would lose its imaginary part with only a warning, and an object array may hold
anything. A torch tensor that requires grad is refused too (it cannot become an array without
``.detach()``). The checks raise before anything is written, so a refused action sends nothing.

Example:
    >>> import numpy as np
    >>> from gymnasium import spaces
    >>> check_action([0.5, -1], spaces.Box(-1.0, 1.0, (2,), np.float32), "MyEnv").tolist()
    [0.5, -1.0]
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

_SENT_NOTHING = "nothing was sent to any device"
_REFUSED_KINDS = {
    "b": "booleans, which would become 0 and full speed",
    "U": "strings; convert them to numbers first",
    "S": "bytes; convert them to numbers first",
    "c": "complex numbers; pass the real part (action.real) if that is what you mean",
    "O": "Python objects (mixed types or None); pass numbers only",
    "V": "a structured or raw-bytes array; pass a plain numeric array",
    "M": "datetimes; pass numbers",
    "m": "timedeltas; pass numbers",
}


def _expected(space: spaces.Space) -> str:
    shape = space.shape
    return (f"a float or integer array of shape {shape} (e.g. np.zeros({shape}, np.float32)) or a list of "
            "Python numbers")


def _refuse(what: str, space: spaces.Space, label: str) -> ValueError:
    return ValueError(f"action is {what}; expected {_expected(space)} for {label}; {_SENT_NOTHING}")


def _from_tensor(action: Any, space: spaces.Space, label: str) -> np.ndarray:
    if getattr(action, "requires_grad", False):
        raise _refuse(f"a torch tensor of dtype {action.dtype} that requires grad; pass "
                      "action.detach().cpu().numpy()", space, label)
    try:
        return np.asarray(action)
    except (TypeError, RuntimeError) as err:  # a tensor on a GPU, for one
        raise _refuse(f"a {type(action).__name__} that cannot become an array ({err}); pass "
                      "action.detach().cpu().numpy()", space, label) from err


def _check_sequence(action: list | tuple, space: spaces.Space, label: str) -> None:
    stack = [action]
    while stack:
        for item in stack.pop():
            if isinstance(item, (list, tuple)):
                stack.append(item)
            elif isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, float, np.integer, np.floating)):
                raise _refuse(f"a sequence holding {item!r} of type {type(item).__name__}", space, label)


def as_numeric_array(action: Any, space: spaces.Space, label: str) -> np.ndarray:
    """``action`` as a float64 array, if it holds real numbers only (any shape).

    Raises:
        ValueError: the action holds anything but real numbers; the message names its dtype.
    """
    if type(action).__module__.split(".")[0] == "torch":
        array = _from_tensor(action, space, label)
    else:
        if isinstance(action, (list, tuple)):
            _check_sequence(action, space, label)
        try:
            array = np.asarray(action)
        except ValueError as err:  # a ragged sequence
            raise _refuse(f"a sequence numpy cannot make an array of ({err})", space, label) from err
    if array.dtype.kind not in "fiu":
        reason = _REFUSED_KINDS.get(array.dtype.kind, "not real numbers")
        raise _refuse(f"of dtype {array.dtype} ({reason})", space, label)
    return array.astype(np.float64, copy=False)


def check_action(action: Any, space: spaces.Space, label: str) -> np.ndarray:
    """Checks ``action`` against ``space`` and returns it as float64, clipped into a Box.

    Args:
        action: what the agent passed to ``step``.
        space: the env's action space.
        label: the env's name, for messages.

    Raises:
        ValueError: not real numbers, the wrong shape, not finite, or outside a Box (by more than
            float32 rounding); the message says which and that nothing was sent.
    """
    arr = as_numeric_array(action, space, label)
    if arr.shape != space.shape:
        raise ValueError(f"action has shape {arr.shape}, expected {space.shape} for {label}; {_SENT_NOTHING}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"action[{bad[0]}]={arr.flat[bad[0]]} is not finite; {_SENT_NOTHING}")
    if isinstance(space, spaces.Box):
        # A tiny tolerance admits float32 rounding of a policy's tanh output.
        out = np.flatnonzero((arr < space.low - 1e-6) | (arr > space.high + 1e-6))
        if out.size:
            i = out[0]
            low, high = (f"{float(v):g}" for v in (space.low.flat[i], space.high.flat[i]))
            raise ValueError(f"action[{i}]={arr.flat[i]:.6g} is outside [{low}, {high}], the action space; "
                             f"clip or squash the policy output; {_SENT_NOTHING}")
        arr = np.clip(arr, space.low, space.high)
    return arr
