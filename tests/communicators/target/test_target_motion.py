"""Target motion: the three modes, the box, seeding and config errors (pure logic, no processes)."""
import re

import numpy as np
import pytest

from communicators.target.target_motion import TargetConfig, TargetEpisodes, TargetMode, TargetMotion

pytestmark = pytest.mark.timeout(30)

TIMES = np.linspace(0.0, 60.0, 3001)  # one minute at 20 ms


def _path(motion: TargetMotion) -> np.ndarray:
    return np.stack([motion.position(t) for t in TIMES])


def test_reaching_target_is_static_within_an_episode_and_changes_between_episodes():
    config = TargetConfig(mode="reaching", seed=3)
    motion = TargetMotion(config)
    starts = []
    for episode in range(5):
        motion.new_episode(config.episode_rng(episode))
        path = _path(motion)
        assert np.all(path == path[0]), "reaching target moved within an episode"
        starts.append(path[0])
    # Five uniform draws in a 0.3 m x 0.5 m box: any two equal would be a seeding bug.
    assert len({tuple(s) for s in starts}) == 5
    low, high = np.array(config.low), np.array(config.high)
    assert np.all((np.array(starts) >= low) & (np.array(starts) <= high))
    assert np.all(np.array(starts)[:, 2] == config.low[2]), "target left the surface"


def test_reaching_positions_are_reproducible_per_seed_and_episode():
    config = TargetConfig(mode="reaching", seed=7)
    a, b = TargetMotion(config), TargetMotion(config)
    a.new_episode(config.episode_rng(4))
    b.new_episode(config.episode_rng(4))
    np.testing.assert_array_equal(a.position(0.0), b.position(0.0))
    b.new_episode(config.episode_rng(5))
    assert not np.array_equal(a.position(0.0), b.position(0.0))


def test_reaching_positions_spread_over_the_whole_box():
    config = TargetConfig(mode="reaching", seed=0)
    motion = TargetMotion(config)
    points = []
    for episode in range(400):
        motion.new_episode(config.episode_rng(episode))
        points.append(motion.position(0.0))
    points = np.array(points)
    span = np.array(config.high) - np.array(config.low)
    # Uniform in the box: the extremes of 400 draws come within 5% of each wall.
    assert np.all(points[:, :2].min(axis=0) < np.array(config.low[:2]) + 0.05 * span[:2])
    assert np.all(points[:, :2].max(axis=0) > np.array(config.high[:2]) - 0.05 * span[:2])


@pytest.mark.parametrize("seed", range(5))
def test_tracking_target_moves_at_speed_stays_in_box_and_bounces(seed):
    config = TargetConfig(mode="tracking", speed=0.2, seed=seed)
    motion = TargetMotion(config)
    motion.new_episode(config.episode_rng(0))
    path = _path(motion)
    low, high = np.array(config.low), np.array(config.high)
    assert np.all(path >= low - 1e-12) and np.all(path <= high + 1e-12)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    dt = TIMES[1] - TIMES[0]
    # Speed is exact except on the steps that contain a bounce (the chord cuts the corner).
    assert np.median(steps) == pytest.approx(config.speed * dt, rel=1e-9)
    assert np.all(steps <= config.speed * dt + 1e-12)
    # 12 m of travel in a 0.3 x 0.5 box: it must have reversed direction on both x and y.
    for axis in (0, 1):
        velocity_sign = np.sign(np.diff(path[:, axis]))
        assert np.any(velocity_sign > 0) and np.any(velocity_sign < 0), f"no bounce on axis {axis}"
    # It reaches the walls rather than turning early.
    assert np.all(path[:, :2].min(axis=0) < low[:2] + 0.01)
    assert np.all(path[:, :2].max(axis=0) > high[:2] - 0.01)
    assert np.all(path[:, 2] == low[2]), "flat box: the target must stay on the surface"


def test_tracking_starts_somewhere_new_each_episode():
    config = TargetConfig(mode="tracking", seed=1)
    motion = TargetMotion(config)
    motion.new_episode(config.episode_rng(0))
    first = motion.position(0.0), motion.position(1.0)
    motion.new_episode(config.episode_rng(1))
    second = motion.position(0.0), motion.position(1.0)
    assert not np.array_equal(first[0], second[0])
    assert not np.allclose(first[1] - first[0], second[1] - second[0])


def test_tracking_bounce_reflects_at_the_wall():
    # One free axis, start at the centre, moving +x at 1 unit/s in a box of width 1.
    config = TargetConfig(mode="tracking", low=(0, 0, 0), high=(1, 0, 0), speed=1.0)
    motion = TargetMotion(config)
    motion.set_episode(start=[0.5, 0.0, 0.0], velocity=[1.0, 0.0, 0.0])
    for t, x in [(0.0, 0.5), (0.25, 0.75), (0.5, 1.0), (0.75, 0.75), (1.5, 0.0), (2.0, 0.5)]:
        np.testing.assert_allclose(motion.position(t), [x, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("static_position", [None, (0.4, 0.1, 0.0)], ids=["centre", "given"])
def test_static_target_never_moves(static_position):
    config = TargetConfig(mode="static", static_position=static_position)
    motion = TargetMotion(config)
    expected = (np.array(config.low) + np.array(config.high)) / 2 if static_position is None \
        else np.array(static_position)
    for episode in range(3):
        motion.new_episode(config.episode_rng(episode))
        np.testing.assert_array_equal(_path(motion), np.tile(expected, (len(TIMES), 1)))


def test_mode_accepts_any_case_and_lists_options_when_unknown():
    assert TargetConfig(mode="Tracking").mode is TargetMode.TRACKING
    with pytest.raises(ValueError, match=re.escape(
            "unknown target mode 'reach'; expected one of 'reaching', 'tracking', 'static'")):
        TargetConfig(mode="reach")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(low=(0, 0, 0), high=(1, -1, 0)), "is below low (0.0, 0.0, 0.0) on axis y"),
        (dict(low=(0, 0)), "TargetConfig.low=(0, 0): expected 3 finite numbers"),
        (dict(speed=-1.0), "TargetConfig.speed=-1.0"),
        (dict(mode="tracking", speed=0.0), "speed=0 in tracking mode"),
        (dict(rate_hz=0.0), "TargetConfig.rate_hz=0.0"),
        (dict(static_position=(5.0, 0.0, 0.0)), "static_position=(5.0, 0.0, 0.0) is outside the box"),
        (dict(seed=-2), "TargetConfig.seed=-2"),
    ],
    ids=["inverted-box", "short-low", "negative-speed", "tracking-zero-speed", "zero-rate",
         "static-outside", "negative-seed"],
)
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TargetConfig(**kwargs)


def test_negative_episode_number_is_rejected():
    with pytest.raises(ValueError, match="episode number -1 is negative"):
        TargetConfig().episode_rng(-1)


class _FakeClock:
    """A settable clock, so episode timing is exact in the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_target_episodes_restart_the_motion_clock_on_request():
    clock = _FakeClock()
    config = TargetConfig(mode="tracking", seed=2, speed=0.1)
    episodes = TargetEpisodes(config, clock=clock)
    expected = TargetMotion(config)
    expected.new_episode(config.episode_rng(0))
    clock.now += 2.0
    position, at = episodes.position()
    np.testing.assert_allclose(position, expected.position(2.0))
    assert at == clock.now
    episodes.start_episode(3.0)  # float, as read from the float64 actuator buffer
    assert episodes.episode == 3
    expected.new_episode(config.episode_rng(3))
    clock.now += 0.5
    np.testing.assert_allclose(episodes.position()[0], expected.position(0.5))


@pytest.mark.parametrize("episode", [1.5, float("nan"), -1.0], ids=["fraction", "nan", "negative"])
def test_target_episodes_reject_bad_episode_numbers(episode):
    episodes = TargetEpisodes(TargetConfig())
    with pytest.raises(ValueError, match="episode"):
        episodes.start_episode(episode)
