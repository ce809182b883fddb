"""Homing (the reset move) on real MuJoCo physics stepped in-process at the command period."""
import re

import numpy as np
import pytest

from communicators.franka.kinematics import READY_POSE
from communicators.franka.safety import PANDA_JOINT_POS_MAX
from communicators.sim.physics.franka_physics import FrankaPhysics
from rtrl_env.errors import EnvError
from rtrl_env.reacher.homing import HomingConfig, HomingController
from rtrl_env.reacher.joints import ALL_JOINTS, HOME_POSE, jittered_home

pytestmark = pytest.mark.timeout(60)


class _SimClock:
    """Simulated seconds, so the timeouts are tested on physics time, not on this machine's load."""

    def __init__(self, physics):
        self.physics = physics

    def __call__(self):
        return self.physics.sim_time


def _run(physics, goal, config=HomingConfig(), wait_s=None, command_life_s=None):
    """Homing against ``physics``. ``wait_s``: seconds between two commands (default: the period);
    ``command_life_s``: after that long a command is replaced by zero, as the arm's watchdog does."""
    wait_s = config.period_s if wait_s is None else wait_s
    sent = []

    def send(dq):
        sent.append(dq.copy())
        physics.set_joint_velocity(dq)

    def wait():
        steps = round(wait_s / physics.timestep)
        live = steps if command_life_s is None else min(steps, round(command_life_s / physics.timestep))
        physics.step(live)
        if live < steps:  # the watchdog stops the arm until the next command comes
            physics.set_joint_velocity(np.zeros(7))
            physics.step(steps - live)

    took = HomingController(config).run(
        goal, read_state=lambda: (physics.state().q, physics.state().dq), send=send,
        wait=wait, clock=_SimClock(physics))
    return took, np.array(sent)


def test_reset_reaches_a_jittered_home_smoothly_and_stops_in_about_the_expected_time():
    physics = FrankaPhysics()
    physics.reset(READY_POSE)
    goal = jittered_home(np.random.default_rng(3), ALL_JOINTS, 0.1)
    config = HomingConfig()
    took, sent = _run(physics, goal)
    expected = HomingController(config).expected_duration(float(np.max(np.abs(goal - READY_POSE))))
    assert 0.5 * expected < took < 2.0 * expected + 0.3, (took, expected)
    np.testing.assert_allclose(physics.state().q, goal, atol=config.tolerance)
    assert np.all(sent[-1] == 0.0)  # the last command stops the arm
    peak = np.max(np.abs(sent), axis=1)
    assert peak.max() <= config.max_velocity + 1e-9
    # Smooth: command changes between periods stay small (no bang-bang).
    assert np.max(np.abs(np.diff(sent[:-1], axis=0))) < 0.2


def test_all_joints_arrive_together_on_a_straight_line():
    ctrl = HomingController(HomingConfig(gain=3.0, max_velocity=0.5))
    q, goal = np.zeros(7), np.array([1.0, 0.5, 0, 0, 0, 0, -0.25])
    dq = ctrl.command(q, goal)
    np.testing.assert_allclose(dq / np.linalg.norm(dq), goal / np.linalg.norm(goal))
    assert np.max(np.abs(dq)) == pytest.approx(0.5)


def test_a_starved_homing_loop_still_brings_the_arm_home_far_past_the_old_8_s_deadline():
    """The cause of the reported failure: on a loaded machine the agent's process sent a command
    every 0.8 s, the arm's watchdog zeroed each after 0.1 s, so the arm moved an eighth of the time."""
    physics = FrankaPhysics()
    physics.reset(HOME_POSE)
    goal = HOME_POSE.copy()
    goal[[0, 3]] += [0.8, 0.6]  # where a saturating policy leaves the 2-joint reacher
    took, _ = _run(physics, goal, wait_s=0.8, command_life_s=0.1)
    assert took > 8.0, f"took {took:.1f} s: this setting no longer reproduces the slow homing"
    np.testing.assert_allclose(physics.state().q, goal, atol=HomingConfig().tolerance)


def test_a_blocked_arm_fails_after_the_stall_timeout_naming_every_joint_and_stops():
    physics = FrankaPhysics()
    physics.reset(HOME_POSE)
    goal = HOME_POSE.copy()
    goal[0] = PANDA_JOINT_POS_MAX[0] + 0.2  # behind the joint's hard stop: the arm blocks there
    config = HomingConfig(stall_timeout_s=1.0)
    with pytest.raises(EnvError, match=re.escape("reset could not bring the arm home: it made no progress for 1.0 s")) \
            as caught:
        _run(physics, goal, config)
    message = str(caught.value)
    assert re.search(r"A1 0\.\d{3} rad to go at [+-]0\.\d{3} rad/s", message), message
    assert all(f"A{i} " in message for i in range(1, 8)), message
    assert "a move that takes about" in message
    assert physics.sim_time < 1.0 + HomingController(config).expected_duration(0.2 + 2.9) + 1.0
    physics.step(500)  # 1 s against the hard stop: the contact's bounce dies out
    assert np.max(np.abs(physics.state().dq)) < 0.01, "the arm was left moving"


def test_a_failed_stop_command_is_kept_on_the_error_it_followed():
    calls = []

    def send(dq):
        calls.append(dq)
        if not np.any(dq):
            raise RuntimeError("actuator buffer closed")

    def read_state():
        raise EnvError("the robot died")

    with pytest.raises(EnvError, match="the robot died") as caught:
        HomingController().run(HOME_POSE, read_state, send, wait=lambda: None)
    assert any("stop command failed: actuator buffer closed" in note for note in getattr(caught.value, "__notes__", [])) \
        or not hasattr(caught.value, "add_note")
    assert len(calls) == 1 and not np.any(calls[0]), "no stop command was tried"


@pytest.mark.parametrize("kwargs, match", [
    ({"gain": 10.0}, "gain * tolerance = 0.1 rad/s exceeds settle_velocity=0.05 rad/s"),
    ({"min_progress": 0.01}, "min_progress=0.01 rad must be below tolerance=0.01 rad"),
    ({"stall_timeout_s": 0.05}, "stall_timeout_s=0.05 s must span at least 5 command periods"),
    ({"tolerance": -1.0}, "HomingConfig.tolerance=-1.0: expected a number > 0"),
], ids=["tolerance-unsettleable", "progress-above-tolerance", "stall-too-short", "negative"])
def test_inconsistent_homing_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        HomingConfig(**kwargs)
