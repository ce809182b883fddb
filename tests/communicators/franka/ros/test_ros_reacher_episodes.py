"""FrankaVisualReacher on backend='ros' completes episodes: rosmaster + MuJoCo bridge + sim camera.

The arm is the bridge node's MuJoCo physics, reached only through ROS topics; the wrist camera is
the sim camera communicator rendering the arm pose the ROS backend publishes, and the target is
the simulated target. Everything is torn down at the end.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from ros_test_helpers import SHARED_MACHINE_STATE_TIMEOUT_S, requires_ros, running_bridge, wait_for

from tests.support.reacher_episodes import make_backend_reacher, run_random_episodes

pytestmark = [requires_ros, pytest.mark.timeout(240)]


def _make_env(master):
    from communicators.franka.ros.franka_ros_communicator import FrankaROSConfig
    from rtrl_env.freshness import FreshnessConfig

    timeout = SHARED_MACHINE_STATE_TIMEOUT_S  # the episodes are under test here, not the 100 ms defaults
    return make_backend_reacher("ros", FrankaROSConfig(master_uri=master.uri, ros_ip="127.0.0.1", transport="rospy",
                                                       state_timeout=timeout),
                                freshness=FreshnessConfig(budget_s={"robot": timeout}))


def test_visual_reacher_completes_episodes_on_the_ros_backend(ros_master):
    with running_bridge(ros_master, "--rate-hz", "500") as bridge:
        env = _make_env(ros_master)
        try:
            run_random_episodes(env)
        finally:
            env.close()
    # The bridge shut down cleanly and the safety filter kept every command below the reflex.
    assert bridge.returncode == 0
    assert any("bridge stopped: reflexes=0" in line for line in bridge.output)


def test_the_sim_camera_renders_the_arm_pose_the_ros_backend_publishes(ros_master):
    from communicators.franka.ros.franka_ros_communicator import FrankaROSCommunicator, FrankaROSConfig
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
    from communicators.sim.sim_target_communicator import SimTargetCommunicator
    from communicators.target.target_motion import TargetConfig

    def newest_frame_after(camera, t):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame, ts, _ = camera.sensor_buffer.latest()
            if ts > t:
                return frame.astype(np.int16)
            time.sleep(0.02)
        raise AssertionError("the camera published no new frame")

    with running_bridge(ros_master, "--rate-hz", "500"):
        robot = FrankaROSCommunicator(FrankaROSConfig(master_uri=ros_master.uri, ros_ip="127.0.0.1", transport="rospy",
                                                      state_timeout=SHARED_MACHINE_STATE_TIMEOUT_S))
        target = SimTargetCommunicator(TargetConfig(mode="static"))
        camera = SimCameraCommunicator(SimCameraConfig(camera="scene", fps=20),
                                       robot.sensor_buffer, target.sensor_buffer)
        comms = [robot, target, camera]
        try:
            for comm in comms:
                comm.start()
            assert wait_for(lambda: camera.sensor_buffer.num_writes > 0
                            and robot.sensor_buffer.num_writes > 0, 30)
            before = newest_frame_after(camera, time.monotonic())
            still = newest_frame_after(camera, time.monotonic())
            end = time.monotonic() + 1.5
            while time.monotonic() < end:  # swing joint 1 by about 0.6 rad
                robot.actuator_buffer.write(np.array([0.4, 0, 0, 0, 0, 0, 0]))
                time.sleep(0.02)
            after = newest_frame_after(camera, time.monotonic())
            for comm in comms:
                comm.raise_if_failed()
        finally:
            for comm in reversed(comms):
                comm.close()
    assert np.abs(still - before).mean() < 0.5, "the image changed while the arm stood still"
    assert np.abs(after - before).mean() > 2.0, "the rendered arm did not follow the ROS state"
