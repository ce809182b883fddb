"""Fixtures for the libfranka backend's tests: a real franka-sim server on a loopback address.

These tests need pylibfranka in the main venv and franka-sim in its own venv
(scripts/install_franka_sim.sh; `make test` runs it). Without them they are skipped, and the reason
is printed (pytest -rs).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from communicators.franka.libfranka.franka_sim_process import (
    FrankaSimProcess,
    FrankaSimProcessConfig,
    free_loopback_host,
    missing_install,
)


def _pylibfranka_missing() -> str | None:
    try:
        import pylibfranka  # noqa: F401
    except ImportError as exc:
        return f"pylibfranka is not installed ({exc}); run scripts/install_franka_sim.sh"
    return None


@pytest.fixture
def needs_pylibfranka() -> None:
    """Skip (saying why) when pylibfranka is not installed."""
    reason = _pylibfranka_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def franka_sim(needs_pylibfranka) -> Iterator[FrankaSimProcess]:
    """A fresh franka-sim FR3 on a free loopback address, enforcing the robot's comm and motion
    limits with reflexes, stopped after the test."""
    reason = missing_install()
    if reason:
        pytest.skip(reason)
    sim = FrankaSimProcess(FrankaSimProcessConfig(host=free_loopback_host()))
    with sim:
        yield sim
