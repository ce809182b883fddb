"""The sim reacher runs whole episodes and resets while other processes burn every core.

The main job once failed on a loaded machine at a reset ("could not bring the arm home within
8.0 s"); see rtrl_env/reacher/homing.py for the cause. Here four busy processes load the two cores
for the whole test, and eight episodes of random actions, half of them held constant for the
whole episode (as an untrained policy that saturates does, which leaves the arm far from home),
must all finish with their resets.
"""
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import rtrl_env  # noqa: F401  (registers the ids)

pytestmark = pytest.mark.timeout(600)

BURNERS = 4
EPISODES = 8


@pytest.fixture
def burners():
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BURNERS)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(10)


def test_eight_episodes_of_random_actions_finish_while_four_processes_burn_the_cores(burners):
    env = gymnasium.make("FrankaVisualReacher2-v0")
    rng = np.random.default_rng(0)
    lengths, home_errors = [], []
    try:
        for episode in range(EPISODES):
            obs, _ = env.reset(seed=episode)
            assert all(proc.poll() is None for proc in burners), "a burner stopped: the cores were not loaded"
            held = rng.choice([-1.0, 1.0], 2).astype(np.float32) if episode % 2 else None
            steps, done = 0, False
            while not done:
                action = held if held is not None else rng.uniform(-1, 1, 2).astype(np.float32)
                obs, _, terminated, truncated, _ = env.step(action)
                steps += 1
                done = terminated or truncated
            lengths.append(steps)
            home = np.array(env.unwrapped.config.home_pose)
            home_errors.append(float(np.abs(obs["proprioception"][[0, 3]] - home[[0, 3]]).max()))  # A1, A4
    finally:
        env.close()
    assert lengths == [env.unwrapped.config.episode_steps] * EPISODES
    # The held actions really took the arm far from home, so those resets had a long way to go.
    assert max(home_errors[1::2]) > 0.5, home_errors
