"""MuJoCo simulation of the Franka visual reacher: scene, physics, and the sim communicators."""
import os

# MuJoCo picks its OpenGL backend when it is first imported; with no display, only EGL (or OSMesa)
# works. Set the default here, before any module of this package imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")

from communicators.sim.franka_physics import FrankaPhysics, FrankaPhysicsConfig  # noqa: E402
from communicators.sim.franka_sim_communicator import FrankaSimCommunicator, FrankaSimConfig  # noqa: E402
from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig  # noqa: E402
from communicators.sim.sim_target_communicator import SimTargetCommunicator  # noqa: E402

__all__ = ["FrankaPhysics", "FrankaPhysicsConfig", "FrankaSimCommunicator", "FrankaSimConfig",
           "SimCameraCommunicator", "SimCameraConfig", "SimTargetCommunicator"]
