"""OpenCV camera: a USB/V4L2 device, a network stream or a video file as an RGB frame source.

Rate: a device or stream delivers at its own frame rate (`fps` is requested from it); a video
file is paced to its recorded frame rate (or `fps`) by absolute deadlines, because
`cv2.VideoCapture` returns file frames as fast as it can decode them.

sensor_buffer slot: uint8 (height, width, 3) RGB frame, resized to width x height when the
source delivers another size. Timestamp: time.monotonic() right after `grab()` returned, i.e.
when the frame was captured, before the seconds spent decoding and converting it.

Failures end the child and reach the parent through `raise_if_failed()` (and so `env.step`)
as a CommunicatorError carrying a DeviceError that names the camera: the source cannot be
opened, a frame cannot be read, or the stream ended. A video file that stops delivering before
the frame count its container states is reported as damaged (or truncated) at that frame, not as
ended: FFmpeg gives up on the first frame it cannot decode.
"""
from __future__ import annotations

import enum
import os
import stat
import time
from dataclasses import dataclass

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import DeviceError


class SourceKind(enum.Enum):
    """What `OpenCVCameraConfig.source` names."""

    DEVICE = "device"  # a device index (0) or a device node (/dev/video0)
    FILE = "file"  # a video file on disk
    STREAM = "stream"  # a URL: rtsp://, http://, ...


@dataclass
class OpenCVCameraConfig:
    """OpenCV camera settings, checked on construction.

    Attributes:
        source: device index (0), device node ("/dev/video0"), video file path, or stream URL
            ("rtsp://host/stream").
        width: frame width in pixels delivered to the buffer.
        height: frame height in pixels delivered to the buffer.
        fps: frames per second. Devices and streams: requested from the source (None keeps
            the device's default). Video files: the playback rate (None plays at the rate
            recorded in the file).
        loop: video files only: replay from the start when the file ends, instead of failing.
        name: camera name used in error messages; None uses the source.
    """

    source: int | str = 0
    width: int = 160
    height: int = 120
    fps: float | None = None
    loop: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        source = self.source
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, str) and source.strip().isdigit():
            source = int(source)
        if isinstance(source, bool) or not isinstance(source, (int, np.integer, str)):
            raise TypeError(f"OpenCVCameraConfig.source={self.source!r}: expected a device index (0), "
                            "a video file path or a stream URL")
        if isinstance(source, (int, np.integer)):
            if source < 0:
                raise ValueError(f"OpenCVCameraConfig.source={source}: device indices start at 0; "
                                 "list devices with `v4l2-ctl --list-devices`")
            source = int(source)
        elif "://" not in source and not os.path.exists(source):
            raise FileNotFoundError(
                f"OpenCVCameraConfig.source={source!r}: no such file or device; give an existing "
                "video file, a device index such as 0, or a stream URL such as rtsp://host/stream"
            )
        self.source = source
        for field_name in ("width", "height"):
            value = getattr(self, field_name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"OpenCVCameraConfig.{field_name}={value!r}: expected a positive int (pixels)")
        if self.fps is not None and not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"OpenCVCameraConfig.fps={self.fps!r}: expected a number > 0 or None")
        if self.loop and self.kind is not SourceKind.FILE:
            raise ValueError(f"OpenCVCameraConfig.loop=True needs a video file; source={source!r} "
                             f"is a {self.kind.value}")
        if self.name is None:
            self.name = str(source)

    @property
    def kind(self) -> SourceKind:
        """Whether the source is a device, a video file or a stream."""
        if isinstance(self.source, int):
            return SourceKind.DEVICE
        if "://" in self.source:
            return SourceKind.STREAM
        return SourceKind.DEVICE if stat.S_ISCHR(os.stat(self.source).st_mode) else SourceKind.FILE


def to_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Convert an OpenCV frame to RGB uint8 (height, width, 3), resizing if needed.

    Args:
        frame: (h, w) grey, (h, w, 3) BGR or (h, w, 4) BGRA uint8, as `VideoCapture` returns.
        width: output width in pixels.
        height: output height in pixels.

    Returns:
        uint8 (height, width, 3) RGB frame.
    """
    import cv2

    if frame.shape[:2] != (height, width):
        # INTER_AREA averages when shrinking, so small frames do not alias.
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


ASSUMED_FPS = 10.0
"""The rate a source without ``fps`` is held to by the env's freshness check: the slowest camera
this framework expects. A device keeps its own rate, unknown until it is opened in the child; so a
hung camera is still caught (within 0.4 s with the default budget), and a camera slower than this
needs its ``fps`` set."""


class OpenCVCameraCommunicator(Communicator):
    """Publishes RGB frames from an OpenCV `VideoCapture` source.

    Its ``expected_period_s`` is ``1 / fps``, or ``1 / ASSUMED_FPS`` when ``fps`` is None.

    Args:
        config: source, size, rate and looping.
        start_method: multiprocessing start method of the child ("fork", "spawn",
            "forkserver"); None: `communicators.communicator.DEFAULT_START_METHOD` (never fork).
    """

    def __init__(self, config: OpenCVCameraConfig, *, start_method: str | None = None) -> None:
        self.config = config
        super().__init__(
            sensor_args={"shape": (config.height, config.width, 3), "dtype": np.uint8, "buffer_len": 4},
            actuator_args=None,
            use_sensor=True,
            use_actuator=False,
            sensor_rate_hz=None,  # the handler blocks on the device, or sleeps to a file's deadline
            name=f"OpenCVCamera({config.name})",
            start_method=start_method,
            expected_period_s=1.0 / (config.fps or ASSUMED_FPS),
        )

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        import cv2

        # Opened here, in the child: a capture opened before the fork would be shared by both
        # processes (one device handle, decoder threads that do not survive a fork).
        c = self.config
        self._cv2 = cv2
        self._kind = c.kind
        self._cap = cv2.VideoCapture(c.source)
        if not self._cap.isOpened():
            what = {SourceKind.DEVICE: "device", SourceKind.FILE: "video file",
                    SourceKind.STREAM: "stream"}[self._kind]
            hint = {SourceKind.DEVICE: "check it is plugged in and not used by another program "
                                       "(`v4l2-ctl --list-devices` lists devices)",
                    SourceKind.FILE: "check it is a video OpenCV's FFmpeg backend can decode",
                    SourceKind.STREAM: "check the URL and that the stream is up"}[self._kind]
            raise DeviceError(f"camera '{c.name}' cannot be opened: OpenCV could not open {what} "
                              f"{c.source!r}; {hint}")
        self._frames = 0  # frames delivered since start
        self._frames_this_pass = 0  # frames since the file was (re)started
        self._period = None
        if self._kind is SourceKind.FILE:
            fps = c.fps or self._cap.get(cv2.CAP_PROP_FPS)
            if not fps or not np.isfinite(fps) or fps <= 0:
                raise DeviceError(f"camera '{c.name}': video file {c.source!r} records no frame rate; "
                                  "set OpenCVCameraConfig.fps")
            self._period = 1.0 / fps
            self._next_deadline = time.monotonic()
        else:
            # Keep one frame queued at most, so grab() returns the newest frame rather than one
            # that waited in the driver's queue (V4L2 honours it; other backends ignore it).
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
            if c.fps is not None:
                self._cap.set(cv2.CAP_PROP_FPS, c.fps)

    def close_device(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()

    def read_sensor(self) -> None:
        if self._period is not None:
            self._wait_for_file_deadline()
        ok = self._cap.grab()
        capture_time = time.monotonic()  # before decoding: the time the frame came in
        if not ok:
            self._rewind_or_fail()
            capture_time = time.monotonic()
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            if self._kind is SourceKind.FILE:
                raise DeviceError(self._damaged_message())
            raise DeviceError(f"camera '{self.config.name}' could not decode frame {self._frames + 1}")
        self.sensor_buffer.write(to_rgb(frame, self.config.width, self.config.height),
                                 timestamp=capture_time)
        self._frames += 1
        self._frames_this_pass += 1

    # ----- helpers (child process) -----

    def _wait_for_file_deadline(self) -> None:
        # Absolute deadlines (start + k * period) do not drift; after a stall longer than a
        # period the schedule restarts from now rather than bursting frames to catch up.
        now = time.monotonic()
        if now < self._next_deadline:
            time.sleep(self._next_deadline - now)
        elif now - self._next_deadline > self._period:
            self._next_deadline = now
        self._next_deadline += self._period

    def _damaged_message(self, total: int | None = None) -> str:
        total = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT)) if total is None else total
        of = f" of the {total} it holds" if total > 0 else ""
        return (f"camera '{self.config.name}' stopped: video file {self.config.source!r} is damaged at frame "
                f"{self._frames_this_pass + 1}{of} (it could not be read or decoded after {self._frames_this_pass} "
                "good frames); re-encode the file or use another one")

    def _rewind_or_fail(self) -> None:
        name = self.config.name
        if self._kind is not SourceKind.FILE:
            raise DeviceError(f"camera '{name}' stopped: no frame after {self._frames} frames "
                              f"(unplugged, or the {self._kind.value} ended?)")
        # The container states how many frames it holds: stopping short of that is damage, not the end.
        total = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT))
        if self._frames_this_pass < total:
            raise DeviceError(self._damaged_message(total))
        if not self.config.loop:
            raise DeviceError(f"camera '{name}' stopped: video file ended after {self._frames} frames; "
                              "set loop=True to replay it")
        if self._frames_this_pass == 0:
            raise DeviceError(f"camera '{name}': video file {self.config.source!r} has no frames to loop")
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
        self._frames_this_pass = 0
        if not self._cap.grab():
            raise DeviceError(f"camera '{name}' could not rewind video file {self.config.source!r} to loop it")
