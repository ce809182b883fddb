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

pytestmark = [requires_ros, pytest.mark.timeout(240)]


def _make_env(master, episode_length_s: float):
    import gymnasium

    import rtrl_env  # noqa: F401 - registers the ids
    from communicators.franka.ros.franka_ros_communicator import FrankaROSConfig
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
    from communicators.sim.sim_target_communicator import SimTargetCommunicator
    from communicators.target.target_motion import TargetConfig
    from rtrl_env.freshness import FreshnessConfig

    camera_config = SimCameraConfig(width=160, height=120, fps=30)
    timeout = SHARED_MACHINE_STATE_TIMEOUT_S  # the episodes are under test here, not the 100 ms defaults
    return gymnasium.make(
        "FrankaVisualReacher2-v0",
        backend="ros",
        robot_config=FrankaROSConfig(master_uri=master.uri, ros_ip="127.0.0.1", transport="rospy",
                                     state_timeout=timeout),
        freshness=FreshnessConfig(budget_s={"robot": timeout}),
        camera=lambda built: SimCameraCommunicator(
            camera_config, built["robot"].sensor_buffer, built["target"].sensor_buffer),
        target_communicator=lambda built: SimTargetCommunicator(TargetConfig(seed=0)),
        episode_length_s=episode_length_s,
    )


def test_visual_reacher_completes_episodes_on_the_ros_backend(ros_master):
    episodes, episode_length_s = 2, 1.6
    with running_bridge(ros_master, "--rate-hz", "500") as bridge:
        env = _make_env(ros_master, episode_length_s)
        try:
            rng = np.random.default_rng(0)
            steps_per_episode = []
            for episode in range(episodes):
                obs, info = env.reset(seed=episode)
                q_home = obs["proprioception"][:7].copy()
                assert obs["image"].dtype == np.uint8 and obs["image"].shape[1:] == (120, 160)
                steps, done, rewards = 0, False, []
                while not done:
                    action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
                    obs, reward, terminated, truncated, info = env.step(action)
                    rewards.append(reward)
                    steps += 1
                    done = terminated or truncated
                    assert steps <= 1000, "the episode never ended"
                assert truncated and not terminated
                assert np.all(np.isfinite(obs["proprioception"]))
                assert all(0.0 <= r <= 4.0 for r in rewards)
                # The random actions moved the arm through ROS.
                assert np.abs(obs["proprioception"][:7] - q_home).max() > 0.01
                steps_per_episode.append(steps)
        finally:
            env.close()
    expected = round(episode_length_s / 0.04)
    assert steps_per_episode == [expected] * episodes
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
