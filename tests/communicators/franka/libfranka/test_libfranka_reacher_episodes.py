"""FrankaVisualReacher on backend='libfranka' completes episodes: franka-sim + sim camera.

The arm is franka-sim's MuJoCo FR3, reached only through pylibfranka's 1 kHz loop with reflexes
enforced; the wrist camera is the sim camera communicator rendering the arm pose the libfranka
backend publishes, and the target is the simulated target. Everything is torn down at the end.
"""
from __future__ import annotations

import pytest

from tests.support.reacher_episodes import make_backend_reacher, run_random_episodes

pytestmark = pytest.mark.timeout(240)


def _make_env(host: str):
    from communicators.franka.libfranka.libfranka_config import LibfrankaConfig
    from rtrl_env.freshness import FreshnessConfig

    # The episodes are under test here, not the 100 ms defaults: franka-sim goes silent for about
    # 0.6 s before it reports a reflex, and a loaded machine causes communication reflexes.
    timeout = 2.0
    return make_backend_reacher("libfranka", LibfrankaConfig(robot_ip=host, state_timeout=timeout),
                                freshness=FreshnessConfig(budget_s={"robot": timeout}))


def test_visual_reacher_completes_episodes_on_the_libfranka_backend(franka_sim):
    env = _make_env(franka_sim.host)
    try:
        run_random_episodes(env)
        # Random 25 Hz action steps, shaped: not one motion-limit reflex from the robot.
        stats = env.unwrapped.devices["robot"].stats()
        assert stats.motion_limit_reflexes == 0
        assert stats.cycles > 300  # the 1 kHz loop ran throughout (fewer when franka-sim runs slow)
    finally:
        env.close()
