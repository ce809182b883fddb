"""Repository-root conftest: puts the repository on sys.path (so tests import tests.support
helpers, also in spawned children) and renders headless unless told otherwise."""
import os

# MuJoCo picks its OpenGL backend at first import; with no display only EGL (or OSMesa) works.
os.environ.setdefault("MUJOCO_GL", "egl")
