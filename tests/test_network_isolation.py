"""The test session runs in a loopback-only network namespace (conftest.py), inherited by children."""
import subprocess
import sys

from examples.loopback_namespace import in_loopback_namespace, reaches_outside


def test_the_session_sees_only_loopback_and_cannot_reach_another_address():
    assert in_loopback_namespace()
    assert not reaches_outside()


def test_a_child_process_inherits_the_namespace():
    code = "from examples.loopback_namespace import in_loopback_namespace as f; print(f())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
