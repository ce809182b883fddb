"""VelocityShaper: 25 Hz command steps become a 1 kHz stream within the FR3's velocity,
acceleration and jerk limits; it converges; stale commands ramp (not step) to zero."""
import re

import numpy as np
import pytest

from communicators.franka.libfranka.velocity_shaper import (
    FR3_MAX_JOINT_ACCELERATION,
    VelocityShaper,
    VelocityShaperConfig,
)

pytestmark = pytest.mark.timeout(30)

DT = 0.001
# Relative slack for floating-point rounding of the finite differences, not for the algorithm.
ROUNDING = 1e-9


def _run(shaper, commands, cycles_per_command=40, t0=0.0):
    """Hold each command for `cycles_per_command` 1 ms cycles, re-sent every 40 ms as the env does.

    Returns the (N, 7) velocities sent.
    """
    out, now = [], t0
    for command in commands:
        for cycle in range(cycles_per_command):
            if cycle % 40 == 0:
                shaper.set_command(command, timestamp=now)
            now += DT
            out.append(shaper.step(shaper.target(now)))
    return np.array(out)


def _derivatives(velocities):
    """Acceleration and jerk of a velocity stream that started at rest, as the robot computes them."""
    padded = np.vstack([np.zeros((2, 7)), velocities])
    acceleration = np.diff(padded, axis=0) / DT
    jerk = np.diff(acceleration, axis=0) / DT
    return acceleration[1:], jerk


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_random_25hz_command_steps_never_exceed_velocity_acceleration_or_jerk_limits(seed):
    shaper = VelocityShaper()
    cfg = shaper.config
    rng = np.random.default_rng(seed)
    # Steps of up to 1.5x the velocity limit, sign flips included: worst-case input.
    commands = rng.uniform(-1.5, 1.5, size=(100, 7)) * cfg.max_velocity
    velocities = _run(shaper, commands)
    acceleration, jerk = _derivatives(velocities)
    assert np.all(np.abs(velocities) <= cfg.max_velocity * (1 + ROUNDING))
    assert np.all(np.abs(acceleration) <= cfg.max_acceleration * (1 + ROUNDING))
    assert np.all(np.abs(jerk) <= cfg.max_jerk * (1 + ROUNDING))
    # The limits are reached, so the check above is not passing for a sluggish shaper.
    assert np.max(np.abs(acceleration) / cfg.max_acceleration) > 0.99


def test_a_single_step_converges_to_the_target_without_overshooting_it():
    shaper = VelocityShaper()
    target = np.array([1.0, -1.0, 0.3, 0.01, 2.0, -1.5, 0.0])
    velocities = _run(shaper, [target], cycles_per_command=1000)
    np.testing.assert_allclose(velocities[-1], target, atol=1e-9)
    np.testing.assert_allclose(shaper.acceleration, 0.0, atol=1e-9)
    # No overshoot beyond one cycle's jerk step (max_jerk * dt^2 = 0.001 rad/s by default).
    slack = shaper.config.max_jerk * DT**2
    assert np.all(velocities.max(axis=0) <= np.maximum(target, 0) + slack)
    assert np.all(velocities.min(axis=0) >= np.minimum(target, 0) - slack)


def test_reaching_a_target_takes_about_as_long_as_the_acceleration_limit_allows():
    cfg = VelocityShaperConfig()
    shaper = VelocityShaper(cfg)
    velocities = _run(shaper, [np.full(7, 1.0)], cycles_per_command=1000)
    reached = np.argmax(np.all(np.abs(velocities - 1.0) < 1e-6, axis=1)) + 1
    # Velocity / acceleration, plus the jerk-limited ramps at each end (a / j).
    ideal = 1.0 / cfg.max_acceleration[0] + cfg.max_acceleration[0] / cfg.max_jerk[0]
    assert reached * DT == pytest.approx(ideal, abs=0.005)


def test_a_command_beyond_max_velocity_is_tracked_at_max_velocity():
    shaper = VelocityShaper()
    velocities = _run(shaper, [np.full(7, 100.0)], cycles_per_command=2000)
    np.testing.assert_allclose(velocities[-1], shaper.config.max_velocity)


def test_stale_command_ramps_to_zero_within_limits_instead_of_stepping():
    cfg = VelocityShaperConfig(command_timeout=0.1)
    shaper = VelocityShaper(cfg)
    moving = _run(shaper, [np.full(7, 1.0)], cycles_per_command=600)
    np.testing.assert_allclose(moving[-1], 1.0)
    # The env stops sending; its last command went out at 0.56 s.
    now, stopping, stale = 0.6, [], []
    for _ in range(700):
        now += DT
        stale.append(shaper.is_stale(now))
        stopping.append(shaper.step(shaper.target(now)))
    stopping, stale = np.array(stopping), np.array(stale)
    first_stale = np.argmax(stale)
    assert 0.56 + cfg.command_timeout == pytest.approx(0.6 + (first_stale + 1) * DT, abs=2 * DT)
    np.testing.assert_allclose(stopping[:first_stale], 1.0)  # fresh: keeps going
    acceleration, jerk = _derivatives(np.vstack([moving, stopping]))
    assert np.all(np.abs(acceleration) <= cfg.max_acceleration * (1 + ROUNDING))
    assert np.all(np.abs(jerk) <= cfg.max_jerk * (1 + ROUNDING))
    # A ramp, not a step: the first stale cycle is still near full speed, and it ends at rest.
    assert stopping[first_stale][0] > 0.99
    np.testing.assert_allclose(stopping[-1], 0.0, atol=1e-9)


def test_a_command_is_fresh_until_the_timeout_and_stale_after_it():
    shaper = VelocityShaper(VelocityShaperConfig(command_timeout=0.1))
    assert shaper.is_stale(0.0)  # nothing ever commanded
    shaper.set_command(np.full(7, 0.2), timestamp=10.0)
    assert not shaper.is_stale(10.09)
    np.testing.assert_allclose(shaper.target(10.09), 0.2)
    assert shaper.is_stale(10.11)


def test_non_finite_command_means_stop():
    shaper = VelocityShaper()
    shaper.set_command(np.array([np.nan, 0, 0, 0, 0, 0, np.inf]), timestamp=0.0)
    np.testing.assert_array_equal(shaper.target(0.0), np.zeros(7))


def test_reset_continues_from_the_given_velocity_at_rest():
    shaper = VelocityShaper()
    shaper.reset(np.full(7, 0.3))
    first = shaper.step(np.full(7, 0.3))
    np.testing.assert_allclose(first, 0.3)
    np.testing.assert_allclose(shaper.acceleration, 0.0)


def test_a_late_cycle_uses_its_real_length_for_the_limits():
    cfg = VelocityShaperConfig()
    shaper = VelocityShaper(cfg)
    # Three cycles lost: the robot judges acceleration over 3 ms, so 3x the velocity change is fine.
    v = shaper.step(np.full(7, 1.0), dt=0.003)
    assert np.all(np.abs(shaper.acceleration) <= cfg.max_jerk * 0.003 + 1e-12)
    np.testing.assert_allclose(v, shaper.acceleration * 0.003)


def test_config_rejects_limits_beyond_the_fr3s():
    with pytest.raises(ValueError, match=re.escape("VelocityShaperConfig.max_acceleration=")):
        VelocityShaperConfig(max_acceleration=FR3_MAX_JOINT_ACCELERATION * 2)
    with pytest.raises(ValueError, match="command_timeout"):
        VelocityShaperConfig(command_timeout=0.0)


def test_wrong_command_shape_is_named():
    with pytest.raises(ValueError, match=re.escape("shape (6,), expected (7,)")):
        VelocityShaper().set_command(np.zeros(6), timestamp=0.0)


def test_sync_continues_from_the_robots_reference_within_one_jerk_step():
    cfg = VelocityShaperConfig()
    shaper = VelocityShaper(cfg)
    # The robot extrapolated a missed cycle: its reference is ahead of our own last output.
    shaper.sync(np.full(7, 0.2), np.full(7, 2.0))
    v = shaper.step(np.full(7, 1.0))
    acceleration = (v - 0.2) / DT
    assert np.all(np.abs(acceleration - 2.0) <= cfg.max_jerk * DT * (1 + ROUNDING))
    np.testing.assert_allclose(shaper.acceleration, acceleration)
