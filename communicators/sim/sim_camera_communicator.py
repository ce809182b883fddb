"""Simulated camera: renders the MuJoCo scene as the arm and the target currently are.

Rate: `fps` frames per second (30 by default), paced by the Communicator's sensor loop. The
camera keeps its own MuJoCo model and data: each frame it copies the freshest arm state from the
arm's sensor buffer (the 21-float layout of communicators/franka/state.py) and the freshest target
position from the target's sensor buffer, poses the scene kinematically and renders it with
`mujoco.Renderer` (OpenGL through EGL, no display needed).

sensor_buffer slot: uint8 (height, width, 3) RGB frame. Timestamp: time.monotonic() when the
scene was captured for rendering, i.e. right after the arm state and target were read, before the
render itself.

Before the arm or target buffer has data, the arm is drawn at its initial pose and the target
off the table, out of sight.
"""
from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass

import numpy as np

from communicators.communicator import DEFAULT_START_METHOD, Communicator
from communicators.errors import DeviceError
from communicators.franka.state import Q, STATE_DIM
from communicators.shared_buffer import SharedBuffer
from communicators.sim.physics import scene
from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig
from communicators.sim.franka_sim_communicator import check_start_method

_HIDDEN_TARGET = np.array([-5.0, -5.0, -1.0])  # below the table, out of every camera's view


class SimCameraName(str, enum.Enum):
    """Cameras of the sim scene."""

    WRIST = scene.WRIST_CAMERA
    SCENE = scene.SCENE_CAMERA

    @classmethod
    def _missing_(cls, value: object) -> "SimCameraName":
        options = ", ".join(repr(c.value) for c in cls)
        raise ValueError(f"unknown sim camera {value!r}; expected one of {options}")


@dataclass
class SimCameraConfig:
    """Simulated camera settings, checked on construction (field names match OpenCVCameraConfig).

    Attributes:
        camera: which camera of the scene renders: "wrist" (eye-in-hand) or "scene" (fixed).
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second rendered and published.
        buffer_len: frames kept in the sensor buffer (the env stacks a few).
        name: camera name used in error messages; None uses "sim:<camera>".
        start_method: how the child process starts: "forkserver" or "spawn"
            (`communicators.communicator.DEFAULT_START_METHOD` by default, never fork: see there),
            or "fork" explicitly.
    """

    camera: SimCameraName | str = SimCameraName.WRIST
    width: int = 160
    height: int = 120
    fps: float = 30.0
    buffer_len: int = 4
    name: str | None = None
    start_method: str = DEFAULT_START_METHOD

    def __post_init__(self) -> None:
        self.camera = SimCameraName(self.camera)
        for field_name, upper in (("width", 4096), ("height", 4096), ("buffer_len", 1000)):
            value = getattr(self, field_name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 < value <= upper:
                raise ValueError(f"SimCameraConfig.{field_name}={value!r}: expected an int in 1..{upper}")
        if not (np.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise ValueError(f"SimCameraConfig.fps={self.fps!r}: expected a number in (0, 1000] Hz")
        check_start_method(self.start_method, "SimCameraConfig")
        if self.name is None:
            self.name = f"sim:{self.camera.value}"


class SimCameraCommunicator(Communicator):
    """Renders the sim scene from the arm's and target's shared state (see the module docstring).

    Args:
        config: camera settings; None gives the defaults (wrist, 160x120, 30 fps).
        robot_state_buffer: the arm communicator's sensor_buffer, float64 (21,).
        target_buffer: the target communicator's sensor_buffer, float64 (3,) target position in
            the world frame (m); None draws no target.

    Raises:
        ValueError: a buffer has the wrong slot shape.
    """

    def __init__(
        self,
        config: SimCameraConfig | None = None,
        robot_state_buffer: SharedBuffer | None = None,
        target_buffer: SharedBuffer | None = None,
    ) -> None:
        self.config = config if config is not None else SimCameraConfig()
        if robot_state_buffer is None or tuple(robot_state_buffer.shape) != (STATE_DIM,):
            raise ValueError(
                f"camera {self.config.name!r}: robot_state_buffer must be the arm communicator's "
                f"sensor_buffer with slots of shape ({STATE_DIM},), got {robot_state_buffer!r}"
            )
        if target_buffer is not None and tuple(target_buffer.shape) != (3,):
            raise ValueError(
                f"camera {self.config.name!r}: target_buffer slots must have shape (3,) "
                f"(x, y, z in m), got {tuple(target_buffer.shape)}"
            )
        self.robot_state_buffer = robot_state_buffer
        self.target_buffer = target_buffer
        c = self.config
        super().__init__(
            sensor_args={"shape": (c.height, c.width, 3), "dtype": np.uint8, "buffer_len": c.buffer_len},
            actuator_args=None,
            use_sensor=True,
            use_actuator=False,
            sensor_rate_hz=c.fps,
            actuator_rate_hz=None,
            actuator_timeout=None,
            start_method=c.start_method,
        )

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        c = self.config
        # Mesa's llvmpipe (the CPU renderer behind EGL here) splits each frame across a pool of
        # one thread per core; at these image sizes the hand-offs cost more than they save: one
        # 160x120 frame took 0.86 ms of CPU in the render thread alone, 1.0-1.5 ms with the pool.
        # Read when this process first opens an EGL display (the first frame); a user's value wins.
        os.environ.setdefault("LP_NUM_THREADS", "0")
        self._physics = FrankaPhysics(FrankaPhysicsConfig())
        model = self._physics.model
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, c.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, c.height)
        self._renderer = None  # made by the first frame, see _make_renderer
        self._frame = np.zeros((c.height, c.width, 3), dtype=np.uint8)
        self._physics.set_target_position(_HIDDEN_TARGET)
        self._q = self._physics.config.initial_qpos.copy()

    def _make_renderer(self) -> None:
        import mujoco

        c = self.config
        try:
            # Made in the child (a GL context inherited over fork hangs, dependencies.md) and in
            # the sensor thread itself: an EGL context is current in one thread only, so one made
            # in open_device's thread fails with EGL_BAD_ACCESS here.
            self._renderer = mujoco.Renderer(self._physics.model, c.height, c.width)
        except Exception as exc:  # MuJoCo raises plain errors for GL failures
            raise DeviceError(
                f"camera {c.name!r}: cannot create a MuJoCo renderer ({exc}); run headless with "
                "MUJOCO_GL=egl (or osmesa) set before mujoco is first imported"
            ) from exc

    def close_device(self) -> None:
        renderer = getattr(self, "_renderer", None)
        self._renderer = None
        if renderer is not None:
            renderer.close()

    def read_sensor(self) -> None:
        if self._renderer is None:
            self._make_renderer()
        if self.robot_state_buffer.num_writes > 0:
            state, _, _ = self.robot_state_buffer.latest()
            self._q = state[Q]
        if self.target_buffer is not None and self.target_buffer.num_writes > 0:
            target, _, _ = self.target_buffer.latest()
            self._physics.set_target_position(target)
        capture_time = time.monotonic()
        self._physics.set_joint_positions(self._q)
        self._renderer.update_scene(self._physics.data, camera=self.config.camera.value)
        self._renderer.render(out=self._frame)
        self._release_gl_context()
        self.sensor_buffer.write(self._frame, timestamp=capture_time)

    @staticmethod
    def _release_gl_context() -> None:
        # An EGL context stays bound to the render thread, even after that thread ends, and then
        # cannot be freed from close_device's thread (EGL_BAD_ACCESS). Unbinding it after each
        # frame costs microseconds; render() binds it again.
        if os.environ.get("MUJOCO_GL", "").lower() == "egl":
            from OpenGL import EGL

            EGL.eglMakeCurrent(EGL.eglGetCurrentDisplay(), EGL.EGL_NO_SURFACE,
                               EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
