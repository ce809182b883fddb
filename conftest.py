"""Repository-root conftest: puts the repository on sys.path (so tests import tests.support
helpers, also in spawned children). Headless rendering (MUJOCO_GL=egl) is set by
communicators.sim.physics, which every test that renders imports before mujoco."""
