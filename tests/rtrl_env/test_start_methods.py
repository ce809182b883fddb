"""No child of an env is forked: the parent of a training run holds threads.

Forking a multi-threaded process can deadlock the child on a lock another thread held (Python 3.12
warns about it; 3.14 moved Linux's default away from fork). Every communicator and the polling
loop default to communicators.communicator.DEFAULT_START_METHOD, forkserver or spawn.
"""
from __future__ import annotations

import os
import threading
import warnings

import gymnasium
import numpy as np
import pytest

import rtrl_env  # noqa: F401  (registers the ids)
from communicators.communicator import DEFAULT_START_METHOD
from tests.support.processes import cmdline
from tests.support.video import write_clip

pytestmark = pytest.mark.timeout(120)


def _started_without_fork(pid: int) -> bool:
    """A spawned child runs multiprocessing's spawn entry point; a forkserver child is forked from
    the forkserver, whose command line it keeps. A forked child keeps this test's command line."""
    line = cmdline(pid)
    return "multiprocessing.spawn import spawn_main" in line or "multiprocessing.forkserver import main" in line


def test_the_default_start_method_is_never_fork():
    assert DEFAULT_START_METHOD in ("forkserver", "spawn")


def test_with_threads_running_in_the_parent_every_child_of_the_reacher_is_started_without_fork():
    stop = threading.Event()

    def busy():  # what a learner, a logger and torch's pool look like to fork
        while not stop.is_set():
            np.linalg.eigvals(np.random.default_rng().random((32, 32)))

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    env = gymnasium.make("FrankaVisualReacher2-v0")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env.reset(seed=0)
            env.step(np.zeros(2, np.float32))
        assert threading.active_count() >= 5
        procs = env.unwrapped.processes
        assert {p.name.split(" ")[0] for p in procs} >= {"robot", "camera", "target", "FrankaVisualReacher2-v0"}
        for proc in procs:
            assert proc.start_method == DEFAULT_START_METHOD, (proc.name, proc.start_method)
            assert _started_without_fork(proc.pid), f"{proc.name} (pid {proc.pid}) was forked: {cmdline(proc.pid)}"
            assert proc.pid != os.getpid()
        assert not [w for w in caught if "fork" in str(w.message)], [str(w.message) for w in caught]
    finally:
        env.close()
        stop.set()
        for thread in threads:
            thread.join(5)


def test_every_communicator_of_the_library_defaults_to_the_same_start_method(tmp_path):
    from communicators.camera.opencv_camera_communicator import OpenCVCameraCommunicator, OpenCVCameraConfig
    from communicators.franka.libfranka.franka_libfranka_communicator import FrankaLibfrankaCommunicator
    from communicators.franka.libfranka.libfranka_config import LibfrankaConfig
    from communicators.franka.ros.franka_ros_communicator import FrankaROSCommunicator, FrankaROSConfig
    from communicators.sim.franka_sim_communicator import FrankaSimCommunicator
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator
    from communicators.sim.sim_target_communicator import SimTargetCommunicator

    video = write_clip(tmp_path / "one.avi", n_frames=1, fps=10.0)
    arm = FrankaSimCommunicator()
    made = [arm, SimCameraCommunicator(robot_state_buffer=arm.sensor_buffer), SimTargetCommunicator(),
            OpenCVCameraCommunicator(OpenCVCameraConfig(source=video)),
            FrankaROSCommunicator(FrankaROSConfig(master_uri="http://127.0.0.1:1")),
            FrankaLibfrankaCommunicator(LibfrankaConfig(robot_ip="127.0.0.1"))]
    try:
        assert {type(c).__name__: c.start_method for c in made} == {
            type(c).__name__: DEFAULT_START_METHOD for c in made}
    finally:
        for comm in made:
            comm.close()
