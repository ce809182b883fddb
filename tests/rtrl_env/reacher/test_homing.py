"""Homing (the reset move) on real MuJoCo physics stepped in-process at the command period."""
import re

import numpy as np
import pytest

from rtrl_env.errors import EnvError
from communicators.franka.kinematics import READY_POSE
from communicators.sim.physics.franka_physics import FrankaPhysics
from rtrl_env.reacher.homing import HomingConfig, HomingController
from rtrl_env.reacher.joints import ALL_JOINTS, HOME_POSE, jittered_home

pytestmark = pytest.mark.timeout(60)


class _SimClock:
    """Simulated seconds, so the timeout is tested on physics time, not on this machine's load."""

    def __init__(self, physics):
        self.physics = physics

    def __call__(self):
        return self.physics.sim_time


def _run(physics, goal, config=HomingConfig()):
    steps = round(config.period_s / physics.timestep)
    sent = []

    def send(dq):
        sent.append(dq.copy())
        physics.set_joint_velocity(dq)

    took = HomingController(config).run(
        goal, read_state=lambda: (physics.state().q, physics.state().dq), send=send,
        wait=lambda: physics.step(steps), clock=_SimClock(physics))
    return took, np.array(sent)


def test_reset_reaches_a_jittered_home_smoothly_and_stops():
    physics = FrankaPhysics()
    physics.reset(READY_POSE)
    goal = jittered_home(np.random.default_rng(3), ALL_JOINTS, 0.1)
    took, sent = _run(physics, goal)
    assert took < HomingConfig().timeout_s
    np.testing.assert_allclose(physics.state().q, goal, atol=HomingConfig().tolerance)
    assert np.all(sent[-1] == 0.0)  # the last command stops the arm
    peak = np.max(np.abs(sent), axis=1)
    assert peak.max() <= HomingConfig().max_velocity + 1e-9
    # Smooth: command changes between periods stay small (no bang-bang).
    assert np.max(np.abs(np.diff(sent[:-1], axis=0))) < 0.2


def test_all_joints_arrive_together_on_a_straight_line():
    ctrl = HomingController(HomingConfig(gain=3.0, max_velocity=0.5))
    q, goal = np.zeros(7), np.array([1.0, 0.5, 0, 0, 0, 0, -0.25])
    dq = ctrl.command(q, goal)
    np.testing.assert_allclose(dq / np.linalg.norm(dq), goal / np.linalg.norm(goal))
    assert np.max(np.abs(dq)) == pytest.approx(0.5)


def test_unreachable_home_raises_env_error_and_leaves_the_arm_stopped():
    physics = FrankaPhysics()
    physics.reset(HOME_POSE)
    goal = HOME_POSE.copy()
    goal[0] += 2.0  # 2 rad at 0.05 rad/s cannot be done in 1 s
    config = HomingConfig(max_velocity=0.05, timeout_s=1.0)
    with pytest.raises(EnvError, match=re.escape("reset could not bring the arm home within 1.0 s: "
                                                  "joint A1 is")):
        _run(physics, goal, config)
    physics.step(100)
    assert np.max(np.abs(physics.state().dq)) < 0.01
