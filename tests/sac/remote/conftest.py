"""Fixtures for the remote-learner tests: a real two-node Ray cluster on loopback per test module.

The test session already runs in a loopback-only network namespace (the repository's conftest.py);
the cluster adds a fresh HOME with ``ray_bootstrap_config.yaml`` (``provider: {type: local}``),
usage stats off and the report URL on a closed loopback port, for the nodes and, through
``os.environ``, for every process a test starts (the training run's bridge is the driver). The
nodes are 127.0.0.2 (head, the robot's side) and 127.0.0.3 (the learner's); each test module gets
its own cluster, torn down at its end with every process and segment it made.
"""
from __future__ import annotations

import os

import pytest

from examples.loopback_namespace import in_loopback_namespace
from sac.remote.local_cluster import LocalCluster, hygiene_env
from tests.support.processes import register_pid


@pytest.fixture(scope="module")
def ray_cluster():
    """A started LocalCluster; HOME and Ray's usage-stats variables point at its fresh HOME meanwhile."""
    assert in_loopback_namespace(), "Ray tests must run in the loopback-only namespace (conftest.py)"
    cluster = LocalCluster().start()
    saved = {key: os.environ.get(key) for key in hygiene_env(cluster.home)}
    os.environ.update(hygiene_env(cluster.home))
    try:
        yield cluster
    finally:
        for pid in cluster.pids():
            register_pid(pid)  # their segments count in tests/test_no_leftovers.py too
        cluster.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def cluster(ray_cluster):
    """The module's cluster with its learner node up (a test before may have killed its raylet)."""
    node = ray_cluster.learner
    if node is None or node.proc.poll() is not None or node.pid_of("raylet") is None:
        node.stop()
        ray_cluster.start_learner_node()
    for pid in ray_cluster.pids():
        register_pid(pid)
    return ray_cluster
