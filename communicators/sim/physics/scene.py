"""The MuJoCo scene of the visual reacher: a Panda arm, a monitor lying under it, a red target.

Built with MjSpec from the Panda MJCF that gymnasium-robotics ships (Apache-2.0, under
`envs/assets/kitchen_franka/franka_assets/`), then changed so that it behaves like a Franka under
joint-velocity control and renders fast on a CPU:

- Joint angles follow Franka's convention (`communicators.franka.kinematics`): the asset's joints 6
  and 7 are offset by pi/2 and pi/4, which `ref` removes; limits are the datasheet's.
- Arm actuators are velocity servos (force limits of the real arm), arm joints lose the asset's
  heavy damping, and every arm body is gravity-compensated, as the real robot's controller does.
- The site "end_effector" sits exactly on the Franka Hand TCP that `franka_kinematics.fk` computes.
- Cameras: "wrist" on the hand looking along the gripper (eye-in-hand), "scene" fixed, looking at
  the arm and monitor.
- A mocap body "target" carries a flat red disc lying on the monitor; move it with
  `data.mocap_pos[0]`.
- Render settings: no shadows, no multisampling, no reflections, collision meshes (low-poly) as
  visuals; dependencies.md measured these as the difference between ~10 and >100 fps at 160x120.

World frame = robot base frame (link 0 at the origin), metres.
"""
from __future__ import annotations

import importlib.util
import os

import mujoco
import numpy as np

from communicators.franka.kinematics import FLANGE_OFFSET, HAND_TCP_OFFSET, HAND_YAW, READY_POSE
from communicators.franka.safety import PANDA_JOINT_POS_MAX, PANDA_JOINT_POS_MIN

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
ARM_ACTUATORS = tuple(f"panda0_joint{i}" for i in range(1, 8))
EE_SITE = "end_effector"
WRIST_CAMERA = "wrist"
SCENE_CAMERA = "scene"
TARGET_BODY = "target"
CAMERAS = (WRIST_CAMERA, SCENE_CAMERA)

MONITOR_CENTER = np.array([0.5, 0.0])
"""Centre of the monitor's screen in the base frame's x-y plane (m)."""
MONITOR_HALF_SIZE = np.array([0.2, 0.3])
"""Half extents of the screen along x and y (m)."""
MONITOR_TOP_Z = 0.0
"""Height of the screen surface (m): level with the robot base; the target lies on it."""
MONITOR_THICKNESS = 0.02
"""The monitor lies on the table, whose surface (the floor plane) is this far below the base (m)."""
TARGET_RADIUS = 0.025
"""Radius of the red target disc (m)."""
TARGET_HALF_THICKNESS = 0.001
"""Half thickness of the target disc (m)."""
TARGET_REST_Z = MONITOR_TOP_Z
"""Target position z (m) at which the disc lies on the screen: the target body's origin is the
centre of the disc's underside, so target positions are points on the screen surface."""
TARGET_RGBA = (1.0, 0.0, 0.0, 1.0)
WRIST_CAMERA_FOVY = 60.0
"""Vertical field of view of the wrist camera (degrees)."""

_SHOULDER_TORQUE = 87.0  # N m, torque limit of joints 1-4
# Asset joints 6 and 7 are rotated by these angles relative to Franka's convention (rad).
_JOINT_REF = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.pi / 2, np.pi / 4])
# Exact body orientations replacing the asset's rounded Euler angles (1.57 for pi/2).
_EXACT_EULER = {"panda0_link6": (np.pi / 2, 0.0, np.pi / 2), "panda0_link7": (np.pi / 2, 0.0, np.pi / 4)}


def panda_asset_dir() -> str:
    """Folder of the Panda MJCF inside the installed gymnasium-robotics package."""
    # find_spec locates the package without importing it (its import prints warnings, loads envs).
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or spec.origin is None:
        raise ImportError(
            "gymnasium-robotics is not installed; the sim needs its Panda model: "
            "pip install 'gymnasium-robotics==1.4.2' (or pip install -e '.[sim]')"
        )
    return os.path.join(
        os.path.dirname(spec.origin), "envs", "assets", "kitchen_franka", "franka_assets"
    )


def _euler_to_quat(euler: tuple[float, float, float]) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.asarray(euler, dtype=np.float64), "xyz")
    return quat


def _look_at_xyaxes(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera xyaxes (6,) for a camera at `eye` looking at `target`, z up."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.concatenate([right, up])


def build_spec(*, timestep: float = 0.002, velocity_gain: float = 400.0) -> mujoco.MjSpec:
    """Build the scene's MjSpec (not compiled), so callers can still change it.

    Args:
        timestep: physics step, s.
        velocity_gain: gain kv of the joint-velocity servos of joints 1-4, N m s/rad; joints 5-7
            get it scaled by their lower torque limit (12/87). The servo torque is
            kv * (commanded - actual velocity), clipped to the arm's torque limits.

    Returns:
        The scene spec; `build_spec().compile()` gives the MjModel.
    """
    asset_dir = panda_asset_dir()
    xml = f"""
    <mujoco model="franka_visual_reacher">
      <include file="{asset_dir}/assets.xml"/>
      <include file="{asset_dir}/actuator.xml"/>
      <worldbody><include file="{asset_dir}/chain.xml"/></worldbody>
    </mujoco>"""
    spec = mujoco.MjSpec.from_string(xml)
    # Includes prefix mesh files with the include's folder; the meshes live one level below.
    for mesh in spec.meshes:
        mesh.file = os.path.join(asset_dir, "meshes", os.path.relpath(mesh.file, asset_dir))

    spec.option.timestep = timestep
    # implicitfast integrates the velocity servos' damping implicitly: stiff gains stay stable.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST

    _make_velocity_controlled(spec, velocity_gain)
    _use_low_poly_visuals(spec)
    _add_world(spec)
    _add_cameras_and_tcp(spec)
    spec.add_key(name="ready", qpos=[*READY_POSE, 0.02, 0.02],
                 ctrl=[0.0] * len(ARM_ACTUATORS) + [0.02, 0.02],
                 mpos=[*MONITOR_CENTER, TARGET_REST_Z])
    return spec


def _make_velocity_controlled(spec: mujoco.MjSpec, velocity_gain: float) -> None:
    for i, name in enumerate(ARM_JOINTS):
        joint = spec.joint(name)
        joint.ref = _JOINT_REF[i]
        joint.range = [PANDA_JOINT_POS_MIN[i], PANDA_JOINT_POS_MAX[i]]
        # The asset's damping (100 N m s/rad) would eat most of the torque at speed; the real arm's
        # controller compensates friction, so keep only a little for numerical smoothness.
        joint.damping = [0.1, 0.0, 0.0]
        joint.armature = 0.1
    for body_name, euler in _EXACT_EULER.items():
        body = spec.body(body_name)
        body.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
        body.quat = _euler_to_quat(euler)
    for name in ARM_ACTUATORS:
        act = spec.actuator(name)
        # The wrist motors give 12 N m, the shoulder ones 87: scale the gain with the torque limit,
        # or the wrist servos saturate and ring after a velocity step.
        act.set_to_velocity(kv=velocity_gain * act.forcerange[1] / _SHOULDER_TORQUE)
        act.ctrlrange = [-10.0, 10.0]  # the safety filter limits speeds; this only bounds ctrl
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.gravcomp = 1.0
    # Keep the fingers half open, as a fixed gripper.
    for name in ("r_gripper_finger_joint", "l_gripper_finger_joint"):
        spec.actuator(name).ctrlrange = [0.0, 0.04]


def _use_low_poly_visuals(spec: mujoco.MjSpec) -> None:
    # The visual STLs have ~20k triangles per link; the collision STLs a few hundred.
    for geom in list(spec.geoms):
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.meshname.endswith("_viz") \
                and geom.meshname != "finger_viz":
            spec.delete(geom)
        elif geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.meshname.endswith("_col"):
            geom.group = 0
            geom.rgba = [0.9, 0.9, 0.88, 1.0]
    for mesh in list(spec.meshes):
        if mesh.name.endswith("_viz") and mesh.name != "finger_viz":
            spec.delete(mesh)
    quality = spec.visual.quality
    quality.offsamples = 0
    quality.shadowsize = 0
    spec.visual.map.zfar = 10.0


def _add_world(spec: mujoco.MjSpec) -> None:
    world = spec.worldbody
    light = world.add_light(pos=[0.5, 0.0, 3.0], dir=[0.0, 0.0, -1.0])
    light.castshadow = False
    light.diffuse = [0.8, 0.8, 0.8]
    light.specular = [0.1, 0.1, 0.1]
    half_z = MONITOR_THICKNESS / 2
    table_z = MONITOR_TOP_Z - MONITOR_THICKNESS
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3.0, 3.0, 0.1],
                   pos=[0.0, 0.0, table_z], rgba=[0.35, 0.4, 0.45, 1.0])
    world.add_geom(name="base_plate", type=mujoco.mjtGeom.mjGEOM_BOX,
                   pos=[0.0, 0.0, table_z + half_z], size=[0.12, 0.12, half_z],
                   rgba=[0.2, 0.2, 0.2, 1.0])
    world.add_geom(name="monitor", type=mujoco.mjtGeom.mjGEOM_BOX,
                   pos=[*MONITOR_CENTER, MONITOR_TOP_Z - half_z], size=[*MONITOR_HALF_SIZE, half_z],
                   rgba=[0.05, 0.05, 0.08, 1.0])
    # Target positions are points on the screen: the body sits there and the disc on top of it
    # (raised by its half thickness, so it does not z-fight with the screen). Purely visual (no
    # contacts), like a dot drawn on the screen.
    target = world.add_body(name=TARGET_BODY, mocap=True, pos=[*MONITOR_CENTER, TARGET_REST_Z])
    target.add_geom(name="target_disc", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                    pos=[0.0, 0.0, TARGET_HALF_THICKNESS],
                    size=[TARGET_RADIUS, TARGET_HALF_THICKNESS, 0.0],
                    rgba=list(TARGET_RGBA), contype=0, conaffinity=0)


def _add_cameras_and_tcp(spec: mujoco.MjSpec) -> None:
    link7 = spec.body("panda0_link7")
    site = spec.site(EE_SITE)
    site.pos = [0.0, 0.0, FLANGE_OFFSET + HAND_TCP_OFFSET]
    site.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT
    site.quat = _euler_to_quat((0.0, 0.0, HAND_YAW))
    # Eye-in-hand: beside the hand, 6 cm off the gripper axis (perpendicular to the finger travel),
    # looking along the gripper. A MuJoCo camera looks along its -z, hence the half turn about x.
    c, s = np.cos(HAND_YAW), np.sin(HAND_YAW)
    offset = 0.06 * np.array([c, s])  # hand x axis expressed in the link-7 frame
    cam_quat = np.zeros(4)
    mujoco.mju_mulQuat(cam_quat, _euler_to_quat((0.0, 0.0, HAND_YAW)), np.array([0.0, 1.0, 0.0, 0.0]))
    link7.add_camera(name=WRIST_CAMERA, pos=[*offset, FLANGE_OFFSET + 0.06], quat=cam_quat,
                     fovy=WRIST_CAMERA_FOVY)
    eye = np.array([1.5, -1.1, 1.1])
    cam = spec.worldbody.add_camera(name=SCENE_CAMERA, pos=eye, fovy=45.0)
    cam.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    cam.alt.xyaxes = _look_at_xyaxes(eye, np.array([0.4, 0.0, 0.3]))


def build_model(*, timestep: float = 0.002, velocity_gain: float = 400.0) -> mujoco.MjModel:
    """Compile the scene (see `build_spec` for the arguments).

    The keyframe "ready" holds the arm in READY_POSE. (qpos0 must stay at the joints' `ref`:
    MuJoCo measures hinge rotations from qpos0.)
    """
    return build_spec(timestep=timestep, velocity_gain=velocity_gain).compile()


def arm_indices(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the 7 arm joints: (qpos addresses, dof addresses, actuator ids), each (7,)."""
    jids = [model.joint(n).id for n in ARM_JOINTS]
    return (
        np.array([model.jnt_qposadr[j] for j in jids]),
        np.array([model.jnt_dofadr[j] for j in jids]),
        np.array([model.actuator(n).id for n in ARM_ACTUATORS]),
    )
