"""Repository-root conftest: puts the repository on sys.path (so tests import tests.support
helpers, also in spawned children), and moves the test session into a loopback-only network
namespace before anything starts, so no test (ROS, DDS, Ray) can send a packet off the machine.
Headless rendering (MUJOCO_GL=egl) is set by communicators.sim.physics, which every test that
renders imports before mujoco."""
from examples.loopback_namespace import enter_loopback_namespace

enter_loopback_namespace()
