"""The reacher's shipped extra sensors (rtrl_env/reacher/sensors.py) and the blanked-image variant,
on the real sim env (arm, camera, target and relay processes) and a real video file."""
from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import rtrl_env  # noqa: F401  (registers the ids)
from communicators.target.target_motion import TargetConfig
from rtrl_env.reacher.expert import ScriptedExpert
from rtrl_env.reacher.sensors import opencv_camera, target_position
from tests.support.processes import wait_for
from tests.support.video import write_clip

pytestmark = pytest.mark.timeout(180)


def test_a_blanked_image_hides_the_target_that_the_target_sensor_and_the_reward_still_see():
    env = gymnasium.make("FrankaVisualReacher2-v0", target=TargetConfig(seed=0), episode_length_s=2.0,
                         blank_image=True, extra_sensors={"target_position": target_position()},
                         render_mode="rgb_array")
    try:
        expert = ScriptedExpert(joints=env.unwrapped.config.joints)
        assert env.observation_space["target_position"].shape == (3,)
        targets = []
        for episode in range(2):
            obs, info = env.reset(seed=episode)
            done = False
            while not done:
                assert obs in env.observation_space and not obs["image"].any()  # no pixel reaches the agent
                obs, reward, terminated, truncated, info = env.step(expert(obs, info))
                # The sensor reports where the target is (reaching mode: it stays put in an episode).
                np.testing.assert_allclose(obs["target_position"], info["target_position"], atol=1e-6)
                done = terminated or truncated
            targets.append(obs["target_position"].copy())
            assert info["camera_axis_distance"] < 0.01  # the expert got there...
            # ...and the reward, from the camera's frames, says so (a centred target pays about 2.3).
            assert info["reward_image"] > 1.0, info
        assert env.render().any()  # the camera itself still sees the scene
        assert np.linalg.norm(targets[0] - targets[1]) > 1e-3  # each episode's new target reached the sensor
    finally:
        env.close()


def test_blank_image_must_be_a_bool():
    with pytest.raises(Exception, match="FrankaVisualReacherConfig.blank_image='yes': must be True or False"):
        gymnasium.make("FrankaVisualReacher2-v0", blank_image="yes")


def test_a_second_opencv_camera_replays_a_video_file_that_ends(tmp_path):
    path = write_clip(tmp_path / "clip.avi", n_frames=5, fps=50.0)  # 0.1 s of video
    sensor = opencv_camera(path)
    assert sensor.name == "camera2" and sensor.space.shape == (3, 120, 160)
    camera = sensor.make({})
    camera.start()
    try:
        # Three times the clip's frames: it went on past the file's end instead of failing.
        wait_for(lambda: camera.raise_if_failed() or camera.sensor_buffer.num_writes >= 15, timeout=20,
                 what="frames past the clip's end")
        frames, _, _ = camera.sensor_buffer.read(4)
        assert frames.shape == (4, 120, 160, 3)
    finally:
        camera.close()
