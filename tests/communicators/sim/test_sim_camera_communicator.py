"""The simulated camera as a real child process rendering with MuJoCo (EGL)."""
import glob
import os
import re
import time

import numpy as np
import pytest

import communicators.sim.physics  # noqa: F401  (first: sets MUJOCO_GL=egl before mujoco loads)
from communicators.franka.state import Q
from communicators.shared_buffer import SEGMENT_PREFIX, SharedBuffer
from communicators.sim.physics import scene
from communicators.sim.physics.franka_physics import FrankaPhysics
from communicators.sim.franka_sim_communicator import FrankaSimCommunicator
from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(90)


def _wait_for(condition, timeout=15.0, what="condition"):
    return wait_for(condition, timeout, what)


def _frame_after(camera, t):
    """The first frame captured after monotonic time t."""
    def newer():
        frame, ts, _ = camera.sensor_buffer.latest()
        return (frame, ts) if ts > t else None

    frame, _ = _wait_for(lambda: camera.sensor_buffer.num_writes > 0 and newer(), what="a new frame")
    return frame


def _red_mask(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 150) & (g < 80) & (b < 80)


@pytest.fixture
def rig():
    """A running sim arm, a target buffer the test writes, and a wrist camera rendering both."""
    arm = FrankaSimCommunicator()
    target = SharedBuffer(shape=(3,), dtype=np.float64, buffer_len=2)
    camera = SimCameraCommunicator(SimCameraConfig(fps=30.0), arm.sensor_buffer, target)
    arm.start()
    camera.start()
    _wait_for(lambda: camera.sensor_buffer.num_writes > 0, what="the first frame")
    _wait_for(lambda: arm.sensor_buffer.num_writes > 0, what="the arm's first state")  # may open after the camera
    yield arm, target, camera
    camera.close()
    arm.close()
    target.close()


def test_frames_are_rgb_uint8_of_the_configured_size_with_increasing_timestamps(rig):
    _, _, camera = rig
    _wait_for(lambda: camera.sensor_buffer.num_writes >= 4, what="4 frames")
    frames, timestamps, _ = camera.sensor_buffer.read(window_len=4)
    assert frames.shape == (4, 120, 160, 3) and frames.dtype == np.uint8
    assert np.all(np.diff(timestamps) > 0)
    assert frames.std() > 5  # a real picture, not a blank buffer



def test_frames_come_at_the_configured_rate_and_no_faster(rig):
    # Rendering in one thread (no llvmpipe pool) must not cost frames; and a frame is rendered
    # only when one is due, never more often than fps.
    _, _, camera = rig
    before, start = camera.sensor_buffer.num_writes, time.monotonic()
    time.sleep(3.0)
    frames, elapsed = camera.sensor_buffer.num_writes - before, time.monotonic() - start
    assert 0.6 * 30.0 * elapsed <= frames <= 30.0 * elapsed + 2, f"{frames} frames in {elapsed:.2f} s at 30 fps"

def test_frames_change_when_the_arm_moves(rig):
    arm, _, camera = rig
    before = _frame_after(camera, time.monotonic()).astype(int)
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        arm.actuator_buffer.write(np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
        time.sleep(0.02)
    after = _frame_after(camera, time.monotonic()).astype(int)
    assert np.abs(after - before).mean() > 5.0


def test_target_on_the_wrist_camera_axis_shows_red_at_the_image_centre(rig):
    arm, target, camera = rig
    # Where does the wrist camera's optical axis meet the screen, for the arm's current pose?
    q = arm.sensor_buffer.latest()[0][Q]
    physics = FrankaPhysics()
    physics.set_joint_positions(q)
    cam = physics.model.camera(scene.WRIST_CAMERA).id
    eye, forward = physics.data.cam_xpos[cam], -physics.data.cam_xmat[cam].reshape(3, 3)[:, 2]
    hit = eye + forward * (scene.TARGET_REST_Z - eye[2]) / forward[2]
    written = time.monotonic()
    target.write(hit)
    rows, cols = np.nonzero(_red_mask(_frame_after(camera, written)))
    assert len(rows) > 20
    assert abs(rows.mean() - 60) < 5 and abs(cols.mean() - 80) < 5


def test_target_moved_off_the_screen_disappears_from_the_wrist_image(rig):
    _, target, camera = rig
    target.write(np.array([0.5, 0.0, scene.TARGET_REST_Z]))
    assert _red_mask(_frame_after(camera, time.monotonic())).sum() > 20
    written = time.monotonic()
    target.write(np.array([0.5, 2.0, scene.TARGET_REST_Z]))
    assert not _red_mask(_frame_after(camera, written)).any()


def test_scene_camera_renders_at_its_own_size():
    arm = FrankaSimCommunicator()
    camera = SimCameraCommunicator(SimCameraConfig(camera="scene", width=96, height=64, fps=20.0),
                                   arm.sensor_buffer, None)
    try:
        camera.start()
        frame = _frame_after(camera, 0.0)
        assert frame.shape == (64, 96, 3)
        assert frame.std() > 5
    finally:
        camera.close()
        arm.close()


def test_camera_and_arm_start_fine_after_this_process_rendered():
    # A child forked after the parent made an EGL context deadlocks; the sim communicators
    # start with forkserver by default to be immune.
    import mujoco

    physics = FrankaPhysics()
    renderer = mujoco.Renderer(physics.model, 60, 80)
    renderer.update_scene(physics.data, camera=scene.SCENE_CAMERA)
    renderer.render()
    arm = FrankaSimCommunicator()
    camera = SimCameraCommunicator(SimCameraConfig(), arm.sensor_buffer, None)
    try:
        arm.start()
        camera.start()
        assert _frame_after(camera, 0.0).std() > 5
        _wait_for(lambda: arm.sensor_buffer.num_writes > 0, what="the arm's first state")
    finally:
        camera.close()
        arm.close()
        renderer.close()


def test_close_leaves_no_process_or_shared_memory_behind():
    pattern = f"/dev/shm/{SEGMENT_PREFIX}{os.getpid()}_*"
    before = set(glob.glob(pattern))
    arm = FrankaSimCommunicator()
    camera = SimCameraCommunicator(SimCameraConfig(), arm.sensor_buffer, None)
    arm.start()
    camera.start()
    _frame_after(camera, 0.0)
    camera.close()
    arm.close()
    assert not camera.is_alive() and not arm.is_alive()
    assert set(glob.glob(pattern)) - before == set()


def test_bad_config_and_buffers_raise_clear_errors():
    with pytest.raises(ValueError, match=re.escape("unknown sim camera 'top'; expected one of 'wrist', 'scene'")):
        SimCameraConfig(camera="top")
    with pytest.raises(ValueError, match=re.escape("SimCameraConfig.width=0")):
        SimCameraConfig(width=0)
    with pytest.raises(ValueError, match=re.escape("SimCameraConfig.start_method='thread'; choose one of")):
        SimCameraConfig(start_method="thread")
    wrong = SharedBuffer(shape=(7,), dtype=np.float64)
    try:
        with pytest.raises(ValueError, match=re.escape("slots of shape (21,)")):
            SimCameraCommunicator(SimCameraConfig(), wrong, None)
    finally:
        wrong.close()
