"""The MuJoCo scene: names others rely on, contacts at rest, and what the wrist camera sees."""
import communicators.sim.physics  # noqa: F401  (first: sets MUJOCO_GL=egl before mujoco loads)
import mujoco
import numpy as np
import pytest

from communicators.sim.physics import scene
from communicators.sim.physics.franka_physics import FrankaPhysics

pytestmark = pytest.mark.timeout(60)


def test_scene_has_the_cameras_site_and_target_other_parts_use():
    model = scene.build_model()
    for cam in scene.CAMERAS:
        assert model.camera(cam).id >= 0
    assert model.site(scene.EE_SITE).id >= 0
    assert model.body(scene.TARGET_BODY).mocapid[0] == 0
    assert model.opt.timestep == 0.002
    assert model.vis.quality.offsamples == 0


def test_arm_at_ready_pose_touches_nothing():
    physics = FrankaPhysics()
    physics.step(10)
    assert physics.data.ncon == 0


def _red_mask(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 150) & (g < 80) & (b < 80)


@pytest.fixture(scope="module")
def renderer_physics():
    physics = FrankaPhysics()
    renderer = mujoco.Renderer(physics.model, 120, 160)
    yield physics, renderer
    renderer.close()


def test_target_on_the_wrist_camera_axis_appears_red_at_the_image_centre(renderer_physics):
    physics, renderer = renderer_physics
    physics.set_joint_positions(physics.config.initial_qpos + np.array([0.2, 0.1, 0, 0, 0, 0, 0]))
    cam = physics.model.camera(scene.WRIST_CAMERA).id
    eye, forward = physics.data.cam_xpos[cam], -physics.data.cam_xmat[cam].reshape(3, 3)[:, 2]
    hit = eye + forward * (scene.TARGET_REST_Z - eye[2]) / forward[2]  # axis meets the screen
    physics.set_target_position(hit)
    physics.set_joint_positions(physics.state().q)  # recompute poses with the moved target
    renderer.update_scene(physics.data, camera=scene.WRIST_CAMERA)
    image = renderer.render()
    rows, cols = np.nonzero(_red_mask(image))
    assert len(rows) > 20
    assert abs(rows.mean() - 60) < 4 and abs(cols.mean() - 80) < 4


def test_target_off_screen_leaves_the_wrist_image_free_of_red(renderer_physics):
    physics, renderer = renderer_physics
    physics.set_target_position(np.array([-1.0, -1.0, scene.TARGET_REST_Z]))
    physics.set_joint_positions(physics.config.initial_qpos)
    renderer.update_scene(physics.data, camera=scene.WRIST_CAMERA)
    assert not _red_mask(renderer.render()).any()


def test_wrist_camera_moves_with_the_hand_when_the_arm_is_posed():
    physics = FrankaPhysics()
    cam = physics.model.camera(scene.WRIST_CAMERA).id
    site = physics.model.site(scene.EE_SITE).id
    offsets = []
    for dq in (np.zeros(7), np.array([0.4, 0.2, -0.3, 0.3, 0.5, -0.2, 0.6])):
        physics.set_joint_positions(physics.config.initial_qpos + dq)
        rot = physics.data.site_xmat[site].reshape(3, 3)
        # camera position in the TCP frame: fixed if the camera rides on the hand
        offsets.append(rot.T @ (physics.data.cam_xpos[cam] - physics.data.site_xpos[site]))
    np.testing.assert_allclose(offsets[0], offsets[1], atol=1e-9)
