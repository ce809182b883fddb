"""FrankaVisualReacher end to end: real sim, camera and target processes, real shared memory.

Each test that starts the env pays ~2 s of process start-up on this machine, so a module-scoped
env serves the tests that only read from it.
"""
import glob
import os
import re

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rtrl_env  # noqa: F401  (registers the ids)
from communicators.shared_buffer import SEGMENT_PREFIX
from communicators.target.target_motion import TargetConfig
from rtrl_env.reacher.expert import ScriptedExpert

pytestmark = pytest.mark.timeout(180)


def _segments():
    return set(glob.glob(f"/dev/shm/{SEGMENT_PREFIX}{os.getpid()}_*"))


def _descendants():
    """PIDs of live descendants of this process, read from /proc (zombies excluded).

    multiprocessing's resource tracker and forkserver are left out: each is started once per
    program and lives, by design, until the program ends (the sim camera starts through the
    forkserver, so its process is a grandchild of this one).
    """
    parent_of, skip = {}, set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(stat.replace("stat", "cmdline"), "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        pid = int(stat.split("/")[2])
        if fields[0] != "Z":
            parent_of[pid] = int(fields[1])
        is_server = b"resource_tracker" in cmdline or b"forkserver import main" in cmdline
        if is_server and int(fields[1]) == os.getpid():  # the servers, not what they start
            skip.add(pid)
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier} - found
        found |= frontier
    return found - skip


@pytest.fixture(scope="module")
def env2():
    env = gymnasium.make("FrankaVisualReacher2-v0", target=TargetConfig(seed=0))
    yield env
    env.close()


def test_check_env_passes_on_the_registered_env():
    env = gymnasium.make("FrankaVisualReacher-v0", episode_length_s=0.4)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


@pytest.mark.parametrize("env_id, n", [("FrankaVisualReacher-v0", 7),
                                       ("FrankaVisualReacher2-v0", 2)], ids=["7-joints", "2-joints"])
def test_spaces_match_the_env_card(env_id, n):
    env = gymnasium.make(env_id)  # construction starts no process
    try:
        assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs = env.observation_space
        assert set(obs.spaces) == {"image", "proprioception"}
        assert obs["image"] == gymnasium.spaces.Box(0, 255, (9, 120, 160), np.uint8)
        assert obs["proprioception"].shape == (14 + n,)
        assert obs["proprioception"].dtype == np.float32
        high = obs["proprioception"].high
        np.testing.assert_allclose(high, np.r_[np.full(7, np.pi), np.full(7, 10.0), np.ones(n)],
                                   rtol=1e-6)
        np.testing.assert_array_equal(obs["proprioception"].low, -high)
        assert env.unwrapped.config.episode_steps == 100 and env.unwrapped.config.dt == 0.04
        assert "FrankaVisualReacher-v0" in gymnasium.registry and env.spec.nondeterministic
    finally:
        env.close()


def test_bad_actions_raise_value_error_naming_the_problem(env2):
    env2.reset(seed=1)
    with pytest.raises(ValueError, match=re.escape(
            "action has shape (7,), expected (2,) for FrankaVisualReacher2-v0; "
            "nothing was sent to any device")):
        env2.step(np.zeros(7, np.float32))
    with pytest.raises(ValueError, match=re.escape("action[0]=nan is not finite")):
        env2.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match=re.escape("action[1]=3 is outside [-1, 1]")):
        env2.step(np.array([0.0, 3.0], np.float32))
    obs, *_ = env2.step(np.zeros(2, np.float32))  # the env still works afterwards
    assert obs in env2.observation_space


def test_steps_report_reward_terms_timing_and_ground_truth(env2):
    obs, info = env2.reset(seed=2)
    assert obs in env2.observation_space
    assert 0.0 <= info["camera_axis_distance"] < 1.0 and info["target_position"].shape == (3,)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env2.step(env2.action_space.sample())
    dt = env2.unwrapped.config.dt
    assert 0.0 <= info["reward_image"] <= 4.0
    assert reward == pytest.approx(info["reward_image"] * dt)
    assert "timing" in info and info["episode_step"] == 5
    assert not terminated and not truncated


def test_frames_are_stacked_once_per_step_oldest_first(env2):
    obs, _ = env2.reset(seed=3)
    img = obs["image"]
    np.testing.assert_array_equal(img[0:3], img[6:9])  # reset fills the stack with one frame
    previous = img
    for _ in range(3):
        obs, *_ = env2.step(np.ones(2, np.float32))
        np.testing.assert_array_equal(obs["image"][0:6], previous[3:9])
        previous = obs["image"]
    assert not np.array_equal(previous[0:3], previous[6:9])  # the camera saw the arm move


def test_proprioception_holds_the_previous_action_and_unused_joints_hold_still(env2):
    obs, _ = env2.reset(seed=4)
    np.testing.assert_array_equal(obs["proprioception"][14:], [0.0, 0.0])
    q0 = obs["proprioception"][:7].copy()
    action = np.array([1.0, -1.0], np.float32)
    for _ in range(10):
        obs, *_ = env2.step(action)
    np.testing.assert_allclose(obs["proprioception"][14:], action)
    q = obs["proprioception"][:7]
    moved = np.abs(q - q0)
    assert moved[0] > 0.05 and moved[3] > 0.05              # A1 and A4 move ...
    assert np.all(moved[[1, 2, 4, 5, 6]] < 0.01), moved     # ... the others hold still


def test_episode_is_truncated_after_episode_length_s():
    env = gymnasium.make("FrankaVisualReacher2-v0", episode_length_s=0.4)
    try:
        env.reset(seed=0)
        flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(10)]
        assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])
    finally:
        env.close()


def test_scripted_expert_clearly_beats_the_random_policy(env2):
    """Paired episodes: the same seeded targets and starts for both policies."""
    expert = ScriptedExpert(joints=env2.unwrapped.config.joints)
    env2.action_space.seed(0)
    returns = {"expert": [], "random": []}
    for policy in returns:
        for episode in range(4):
            obs, info = env2.reset(seed=100 + episode)
            total, done = 0.0, False
            while not done:
                action = expert(obs, info) if policy == "expert" else env2.action_space.sample()
                obs, reward, terminated, truncated, info = env2.step(action)
                total += reward
                done = terminated or truncated
            returns[policy].append(total)
            if policy == "expert":  # it really got there: camera axis on the target
                assert info["camera_axis_distance"] < 0.01, (episode, info)
    expert_mean, random_mean = np.mean(returns["expert"]), np.mean(returns["random"])
    # In-process measurements gave expert ~7 and random ~1.6 per episode (2-joint task).
    assert expert_mean > 2.0 * random_mean and expert_mean - random_mean > 2.0, returns


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match=re.escape(
            "FrankaVisualReacherConfig.backend='ur5': must be one of sim, ros, ros2, libfranka")):
        gymnasium.make("FrankaVisualReacher-v0", backend="ur5")


def test_misspelled_argument_is_refused_listing_the_valid_ones():
    with pytest.raises(TypeError, match=r"unknown FrankaVisualReacher argument\(s\) \['frame_stak'\]"
                                        r"; valid: .*frame_stack"):
        gymnasium.make("FrankaVisualReacher-v0", frame_stak=4)


@pytest.mark.parametrize("priority", [0, 100, 5.5])
def test_a_realtime_priority_outside_1_to_99_is_refused_by_name(priority):
    with pytest.raises(ValueError, match=rf"realtime_priority={priority!r}: must be None or a whole number in 1\.\.99"):
        gymnasium.make("FrankaVisualReacher-v0", realtime_priority=priority)


def test_close_leaves_no_process_or_shared_memory_and_can_be_repeated():
    segments, before = _segments(), _descendants()
    env = gymnasium.make("FrankaVisualReacher2-v0", episode_length_s=0.2)
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    assert len(_descendants() - before) >= 4  # arm, camera, target, polling loop
    env.close()
    env.close()
    assert _descendants() - before == set()
    assert _segments() - segments == set()


def test_a_camera_that_cannot_open_fails_construction_and_frees_the_shared_memory():
    from communicators.camera.opencv_camera_communicator import (OpenCVCameraCommunicator,
                                                                 OpenCVCameraConfig)

    segments = _segments()
    with pytest.raises(FileNotFoundError, match=re.escape("/nonexistent/video.avi")):
        gymnasium.make("FrankaVisualReacher2-v0", camera=lambda built: OpenCVCameraCommunicator(
            OpenCVCameraConfig(source="/nonexistent/video.avi")))
    assert _segments() - segments == set()  # the arm's and target's buffers were closed


def test_an_arm_that_dies_while_homing_makes_reset_raise_env_error_and_frees_everything():
    import threading
    import time

    from rtrl_env.errors import EnvError

    segments, before = _segments(), _descendants()
    env = gymnasium.make("FrankaVisualReacher2-v0")
    try:
        env.reset(seed=0)
        for _ in range(25):  # 1 s at full speed: far enough from home that homing takes a while
            env.step(np.ones(2, np.float32))
        robot = env.unwrapped.devices["robot"]
        killer = threading.Timer(0.2, lambda: os.kill(robot.pid, 9))
        killer.start()
        start = time.monotonic()
        with pytest.raises(EnvError, match=r"'robot \(FrankaSimCommunicator\)' died"):
            env.reset()
        killer.join()
        assert time.monotonic() - start > 0.2  # it died during the homing move, not before it
    finally:
        env.close()
    assert _descendants() - before == set()
    assert _segments() - segments == set()


def test_the_env_card_states_the_homing_and_freshness_defaults_the_code_uses():
    from rtrl_env.reacher.config import ARM_STATE_MAX_AGE_S, SIM_ALLOWANCE_S, FrankaVisualReacherConfig
    from rtrl_env.reacher.env import FrankaVisualReacher
    from rtrl_env.reacher.homing import HomingConfig

    card = " ".join(FrankaVisualReacher.__doc__.split())
    homing = HomingConfig()
    assert (f"within {homing.tolerance:g} rad and slower than {homing.settle_velocity:g} rad/s" in card
            and f"does not shrink by {homing.min_progress * 1e3:g} mrad for {homing.stall_timeout_s:g} s" in card)
    assert f"at most {homing.max_velocity:g} rad/s" in card
    real = FrankaVisualReacherConfig(backend="ros", robot_config=None).freshness
    sim = FrankaVisualReacherConfig().freshness
    assert f"{real.periods:g} of the stream's periods + {real.allowance_s:g} s" in card
    assert f"the arm's state at most {ARM_STATE_MAX_AGE_S * 1e3:g} ms" in card and real.max_budget_s == {"robot": 0.1}
    assert f"{sim.periods:g} periods + {SIM_ALLOWANCE_S:g} s" in card and sim.allowance_s == SIM_ALLOWANCE_S
