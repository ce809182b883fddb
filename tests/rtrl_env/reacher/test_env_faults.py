"""A device of the sim reacher that hangs is caught within its freshness budget plus one cycle.

Each device process (arm, camera, target) of the real sim reacher is stopped with SIGSTOP: alive,
silent, its buffer still full of old slots, which is what a hung driver looks like. The next step
past the stream's budget must raise, naming it, with the arm commanded to zero velocity; after
SIGCONT and a reset the env goes on; nothing outlives close().
"""
import os
import re
import signal
import time

import gymnasium
import numpy as np
import pytest

import rtrl_env  # noqa: F401  (registers the ids)
from communicators.camera.opencv_camera_communicator import ASSUMED_FPS
from rtrl_env.errors import EnvError
from rtrl_env.reacher.sensors import opencv_camera
from tests.support.processes import child_pids, own_segments, pid_alive
from tests.support.video import write_clip

pytestmark = pytest.mark.timeout(180)

CLASSES = {"robot": "FrankaSimCommunicator", "camera": "SimCameraCommunicator", "target": "SimTargetCommunicator"}
SLACK_S = 0.25  # a step may start late on the shared 2-core machine


def _stop_and_step(env, pid):
    stopped = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    while time.monotonic() < stopped + 15:
        try:
            env.step(env.action_space.sample())
        except EnvError as err:
            return time.monotonic() - stopped, str(err)
    pytest.fail("no step raised within 15 s of stopping the device")


@pytest.mark.parametrize("device", ["robot", "camera", "target"])
def test_a_stopped_device_is_caught_within_its_budget_plus_one_cycle_with_the_arm_stopped(device):
    children, segments = child_pids(), own_segments()
    env = gymnasium.make("FrankaVisualReacher2-v0")
    base = env.unwrapped
    pid = None
    try:
        env.reset(seed=0)
        for _ in range(5):
            env.step(np.ones(2, np.float32))  # the arm moves
        pid = base.devices[device].pid
        budget, dt = base.freshness_budgets[device], base.config.dt
        took, message = _stop_and_step(env, pid)
        assert re.search(rf"sensor stream '{device}' \({device} \({CLASSES[device]}\)\) is \d+ ms old, over its "
                         rf"budget of {budget * 1e3:.0f} ms, expected period [\d.]+ ms", message), message
        assert took <= budget + dt + SLACK_S, f"{device}: caught {took:.2f} s after it stopped, budget {budget:.2f} s"
        command, _, _ = base.devices["robot"].actuator_buffer.latest()
        assert np.all(command == 0.0), f"the arm's newest command is {command}, not zero velocity"
        os.kill(pid, signal.SIGCONT)
        env.reset(seed=1)  # the device is back: the env goes on
        obs, *_ = env.step(np.zeros(2, np.float32))
        assert obs in env.observation_space
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
        env.close()
    assert child_pids() - children == set(), "a process outlived close()"
    assert own_segments() - segments == set(), "a shared-memory segment outlived close()"


def test_an_arm_that_hangs_before_a_reset_stops_the_reset_within_its_budget():
    env = gymnasium.make("FrankaVisualReacher2-v0")
    base = env.unwrapped
    robot = None
    try:
        env.reset(seed=0)
        for _ in range(10):
            env.step(np.ones(2, np.float32))  # away from home: the reset has to move the arm
        robot = base.devices["robot"]
        os.kill(robot.pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(EnvError, match=re.escape("sensor stream 'robot' (robot (FrankaSimCommunicator)) is")):
            env.reset(seed=1)
        took = time.monotonic() - start
        assert took <= base.freshness_budgets["robot"] + SLACK_S + 0.1, f"the reset noticed after {took:.2f} s"
        assert np.all(robot.actuator_buffer.latest()[0] == 0.0)
    finally:
        if robot is not None and pid_alive(robot.pid):
            os.kill(robot.pid, signal.SIGCONT)
        env.close()


def test_a_stopped_opencv_camera_with_no_frame_rate_given_is_caught_at_the_assumed_rate(tmp_path):
    # The real-robot path: an OpenCV source whose rate nobody gave (a USB camera; here a video
    # file, the one OpenCV source this machine has) is still held to a budget.
    path = write_clip(tmp_path / "clip.avi", n_frames=30, fps=30.0)
    env = gymnasium.make("FrankaVisualReacher2-v0", extra_sensors={"camera2": opencv_camera(path)})
    base = env.unwrapped
    pid = None
    try:
        env.reset(seed=0)
        for _ in range(5):
            env.step(np.ones(2, np.float32))
        budget, dt = base.freshness_budgets["camera2"], base.config.dt
        assert budget == pytest.approx(base.config.freshness.budget("camera2", 1.0 / ASSUMED_FPS))
        pid = base.devices["camera2"].pid
        took, message = _stop_and_step(env, pid)
        assert re.search(r"sensor stream 'camera2' \(camera2 \(OpenCVCameraCommunicator\)\) is \d+ ms old, over its "
                         rf"budget of {budget * 1e3:.0f} ms, expected period 100.0 ms", message), message
        assert took <= budget + dt + SLACK_S, f"caught {took:.2f} s after it stopped, budget {budget:.2f} s"
    finally:
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
        env.close()
