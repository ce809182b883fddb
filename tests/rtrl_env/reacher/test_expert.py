"""The scripted expert on real MuJoCo physics, in-process, at the env's 40 ms cycle.

The end-to-end comparison with a random policy through the real env is in
test_franka_visual_reacher.py; here every reset and target corner is covered quickly.
"""
import re

import numpy as np
import pytest

from communicators.franka.safety import SafetyFilter
from communicators.sim.physics.franka_physics import FrankaPhysics
from communicators.target.target_motion import DEFAULT_HIGH, DEFAULT_LOW
from rtrl_env.reacher.expert import ScriptedExpert
from rtrl_env.reacher.joints import (ALL_JOINTS, DEFAULT_MAX_JOINT_VELOCITY, TWO_JOINTS,
                                   ActionScaler, jittered_home)
from rtrl_env.reacher.ground_truth import WristCameraGeometry

pytestmark = pytest.mark.timeout(120)
CORNERS = [np.array([x, y, DEFAULT_LOW[2]]) for x in (DEFAULT_LOW[0], DEFAULT_HIGH[0])
           for y in (DEFAULT_LOW[1], DEFAULT_HIGH[1])]


def _time_to_reach(joints, target, rng, seconds=4.0, dt=0.04, tolerance=0.015):
    """Seconds until the camera axis is within `tolerance` m of the target (inf if never)."""
    physics, safety = FrankaPhysics(), SafetyFilter()
    physics.reset(jittered_home(rng, joints, 0.1))
    expert = ScriptedExpert(joints=joints)
    scaler = ActionScaler(joints, DEFAULT_MAX_JOINT_VELOCITY)
    geometry = WristCameraGeometry.from_sim_scene()
    command = np.zeros(7)
    for k in range(round(seconds / dt)):
        state = physics.state()
        action = expert.action(state.q, target)
        assert action.shape == (len(joints),) and np.all(np.abs(action) <= 1.0)
        # One cycle of latency, as in the env: the action computed now acts next cycle.
        physics.set_joint_velocity(safety.filter(state.q, command))
        physics.step(round(dt / physics.timestep))
        command = scaler.to_joint_velocity(action)
        state = physics.state()
        if geometry.axis_distance(state.ee_pos, state.ee_quat, target) < tolerance:
            return (k + 1) * dt
    return np.inf


@pytest.mark.parametrize("joints", [ALL_JOINTS, TWO_JOINTS], ids=["7-joints", "2-joints"])
def test_expert_reaches_every_corner_of_the_target_box_within_half_an_episode(joints):
    rng = np.random.default_rng(7)
    times = [_time_to_reach(joints, corner, rng) for corner in CORNERS]
    times += [_time_to_reach(joints, rng.uniform(DEFAULT_LOW, DEFAULT_HIGH), rng) for _ in range(4)]
    assert max(times) < 2.5, times


def test_expert_turns_towards_the_target_and_holds_still_on_it():
    expert = ScriptedExpert(joints=TWO_JOINTS)
    from rtrl_env.reacher.joints import HOME_POSE
    assert expert.action(HOME_POSE, np.array([0.5, -0.2, 0.0]))[0] < -0.5   # right: A1 negative
    np.testing.assert_allclose(expert.action(HOME_POSE, np.array([0.5, 0.0, 0.0])), 0, atol=0.05)


def test_expert_needs_the_sim_ground_truth():
    expert = ScriptedExpert(joints=TWO_JOINTS)
    with pytest.raises(KeyError, match=re.escape("only the sim backend provides")):
        expert({"proprioception": np.zeros(16, np.float32)}, {})
