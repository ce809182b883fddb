"""MuJoCo simulation of the Franka visual reacher: scene, physics, and the sim communicators."""
import os

# MuJoCo picks its OpenGL backend when it is first imported; with no display, only EGL (or OSMesa)
# works. Set the default here, before any module of this package imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
