"""Extra sensors shipped with the reacher, ready for ``--sensor`` or ``extra_sensors=``.

``--sensor MODULE:FACTORY[:ARG]`` imports ``FACTORY`` from ``MODULE`` (from the current directory
or the installed packages) and calls it with ``ARG`` (one string) if given; it must return an
:class:`~rtrl_env.reacher.devices.ExtraSensor`, whose ``name`` (or else the factory's name) is
the observation key. The three here:

* ``rtrl_env.reacher.sensors:scene_camera[:WxH]``: the sim's fixed scene camera (sim backend
  only), key ``scene_image``, uint8 (3, H, W), 80x60 at 15 fps by default.
* ``rtrl_env.reacher.sensors:opencv_camera:SOURCE``: a second OpenCV camera (a device index, a
  video file or a stream URL), key ``camera2``, uint8 (3, 120, 160) at the source's rate; a video
  file replays from its start when it ends. A hung source is caught as one slower than
  ``ASSUMED_FPS`` (10 fps) would be (communicators/camera/opencv_camera_communicator.py).
* ``rtrl_env.reacher.sensors:target_position``: where the target is, key ``target_position``,
  float32 (3,): the sim's world position (m), or on a real set-up the dot's normalised screen
  position (u, v, 0). Privileged information the pixels otherwise carry: with ``--blank_image``
  (``blank_image=True``) it is the agent's only way to know the target
  (examples/benchmark_sensor_learning.py).

Frames are channel-first like the wrist camera's ``image``, so the agent treats them alike.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from gymnasium import spaces

from rtrl_env.reacher.devices import ExtraSensor


def newest_frame_channel_first(data: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Observation of a camera sensor: the newest frame, uint8 (H, W, 3) -> (3, H, W)."""
    return np.ascontiguousarray(data[-1].transpose(2, 0, 1))


def scene_camera(size: str | None = None) -> ExtraSensor:
    """The sim scene's fixed camera as an extra sensor (sim backend only).

    Args:
        size: ``"WxH"`` in pixels, e.g. ``"80x60"`` (the default).
    """
    width, height = _size(size or "80x60", "scene_camera")
    from communicators.sim.sim_camera_communicator import SimCameraConfig

    config = SimCameraConfig(camera="scene", width=width, height=height, fps=15)
    return ExtraSensor(make=functools.partial(_make_scene_camera, config),
                       space=spaces.Box(0, 255, (3, height, width), np.uint8),
                       observe=newest_frame_channel_first, name="scene_image")


def opencv_camera(source: str | None = None) -> ExtraSensor:
    """A second OpenCV camera (device index, video file or stream URL) as an extra sensor.

    Raises:
        ValueError: no source given.
    """
    if not source:
        raise ValueError("opencv_camera needs a source: --sensor rtrl_env.reacher.sensors:opencv_camera:0 "
                         "(a device index, a video file or a stream URL)")
    from communicators.camera.opencv_camera_communicator import OpenCVCameraConfig, SourceKind

    config = OpenCVCameraConfig(source=source, width=160, height=120, name="camera2")
    if config.kind is SourceKind.FILE:  # a training run outlasts a clip: replay it, not fail at its end
        config = dataclasses.replace(config, loop=True)
    return ExtraSensor(make=functools.partial(_make_opencv_camera, config),
                       space=spaces.Box(0, 255, (3, 120, 160), np.uint8),
                       observe=newest_frame_channel_first, name="camera2")


def target_position() -> ExtraSensor:
    """The target's position as an extra sensor, key ``target_position``, float32 (3,).

    A relay process republishes the target communicator's readings (100 Hz polls); the sim's are
    world coordinates in m, a real set-up's the dot's normalised screen coordinates (u, v, 0).
    """
    return ExtraSensor(make=_make_target_relay, space=spaces.Box(-np.inf, np.inf, (3,), np.float32),
                       observe=newest_float32, name="target_position")


def newest_float32(data: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Observation of a vector sensor: its newest slot as float32."""
    return data[-1].astype(np.float32)


def _make_target_relay(built):  # noqa: ANN001 - a CommunicatorFactory
    from communicators.relay_communicator import RelayCommunicator

    return RelayCommunicator(built["target"].sensor_buffer, rate_hz=100.0, name="TargetPositionRelay")


def _make_scene_camera(config, built):  # noqa: ANN001 - a CommunicatorFactory
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator

    if "target" not in built or getattr(built["robot"], "sensor_buffer", None) is None:
        raise ValueError("scene_camera renders the sim scene: use it with --backend sim")
    return SimCameraCommunicator(config, built["robot"].sensor_buffer, built["target"].sensor_buffer)


def _make_opencv_camera(config, built):  # noqa: ANN001 - a CommunicatorFactory
    from communicators.camera.opencv_camera_communicator import OpenCVCameraCommunicator

    return OpenCVCameraCommunicator(config)


def _size(text: str, who: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{who} size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 80x60") from None
    if width < 1 or height < 1:
        raise ValueError(f"{who} size {text!r}: both sides must be >= 1 pixel")
    return width, height
