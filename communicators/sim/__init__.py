"""Simulated devices of the Franka visual reacher: the arm, the cameras and the target, each a
communicator in its own process, over the MuJoCo world in ``communicators.sim.physics``."""
from communicators.sim.physics import FrankaPhysics, FrankaPhysicsConfig
from communicators.sim.franka_sim_communicator import FrankaSimCommunicator, FrankaSimConfig
from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
from communicators.sim.sim_target_communicator import SimTargetCommunicator

__all__ = ["FrankaPhysics", "FrankaPhysicsConfig", "FrankaSimCommunicator", "FrankaSimConfig",
           "SimCameraCommunicator", "SimCameraConfig", "SimTargetCommunicator"]
