"""Fixtures for the SAC tests."""
from __future__ import annotations

import pytest
from sac_fixtures import own_segments


@pytest.fixture
def no_leaked_segments():
    """Fails the test if it leaves a shared-memory segment of this process behind."""
    before = own_segments()
    yield
    leaked = own_segments() - before
    assert not leaked, f"shared-memory segments left behind: {sorted(leaked)}"
