"""The visual reacher on a real-robot backend, as the backend tests run it: the backend's arm with
the sim camera rendering the pose that backend publishes and the simulated target, then random
episodes checked the same way for every backend (tests/communicators/franka/{ros,ros2,libfranka})."""
from __future__ import annotations

from typing import Any

import numpy as np

EPISODES, EPISODE_LENGTH_S, DT = 2, 1.6, 0.04


def make_backend_reacher(backend: str, robot_config: Any, episode_length_s: float = EPISODE_LENGTH_S,
                         **env_kwargs: Any) -> Any:
    """``FrankaVisualReacher2-v0`` on ``backend``, with a 160x120 sim wrist camera and the seeded sim target."""
    import gymnasium

    import rtrl_env  # noqa: F401 - registers the ids
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
    from communicators.sim.sim_target_communicator import SimTargetCommunicator
    from communicators.target.target_motion import TargetConfig

    camera_config = SimCameraConfig(width=160, height=120, fps=30)
    return gymnasium.make(
        "FrankaVisualReacher2-v0", backend=backend, robot_config=robot_config,
        camera=lambda built: SimCameraCommunicator(
            camera_config, built["robot"].sensor_buffer, built["target"].sensor_buffer),
        target_communicator=lambda built: SimTargetCommunicator(TargetConfig(seed=0)),
        episode_length_s=episode_length_s, **env_kwargs)


def run_random_episodes(env: Any, episodes: int = EPISODES, episode_length_s: float = EPISODE_LENGTH_S) -> None:
    """Runs ``episodes`` episodes of uniform random actions and checks each: 160x120 uint8 images,
    truncated (never terminated) after exactly ``episode_length_s / dt`` steps, finite joint
    states, rewards in [0, 4], and an arm that the actions really moved through the backend."""
    rng = np.random.default_rng(0)
    steps_per_episode = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        q_home = obs["proprioception"][:7].copy()
        assert obs["image"].dtype == np.uint8 and obs["image"].shape[1:] == (120, 160)
        steps, done, rewards = 0, False, []
        while not done:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            steps += 1
            done = terminated or truncated
            assert steps <= 1000, "the episode never ended"
        assert truncated and not terminated
        assert np.all(np.isfinite(obs["proprioception"]))
        assert all(0.0 <= r <= 4.0 for r in rewards)
        assert np.abs(obs["proprioception"][:7] - q_home).max() > 0.01, "the random actions did not move the arm"
        steps_per_episode.append(steps)
    assert steps_per_episode == [round(episode_length_s / DT)] * episodes
