"""Target display: a red dot on a full-screen OpenCV window, on a monitor lying under the arm.

For real set-ups. The dot moves per `TargetMotion` in normalised screen coordinates (u right,
v down, both 0..1), redrawn and published at `motion.rate_hz`.

Buffers (the same layout as `SimTargetCommunicator`):
    sensor_buffer: float64 (3,) = (u, v, 0) of the dot centre in normalised screen coordinates;
        timestamp = time.monotonic() right after the frame was handed to the window system.
    actuator_buffer: float64 (1,): the env writes an episode number at reset to request a new
        target (a new random position in reaching mode, a new start and direction in tracking).

Needs OpenCV with a GUI backend (`opencv-python`, not `opencv-python-headless`) and a display.
Both are checked when the communicator is constructed, before any process starts.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from communicators.communicator import Communicator
from communicators.errors import DeviceError
from communicators.target.target_motion import TargetConfig, TargetEpisodes

INSTALL_HINT = ("pip uninstall -y opencv-python-headless && pip install opencv-python "
                "(the headless build has no windows)")


def _screen_motion_default() -> TargetConfig:
    # Keep the dot's centre 10% away from the screen edges so the whole dot stays visible.
    return TargetConfig(low=(0.1, 0.1, 0.0), high=(0.9, 0.9, 0.0), speed=0.2, rate_hz=60.0)


@dataclass
class TargetDisplayConfig:
    """Target window settings, checked on construction.

    Attributes:
        motion: mode, box and speed in normalised screen coordinates (u, v, 0), 0..1; speed in
            screen widths per second; rate_hz is the redraw and publish rate.
        width: drawn image width in pixels (use the monitor's resolution; the full-screen
            window scales the image to the screen).
        height: drawn image height in pixels.
        radius_px: dot radius in pixels of the drawn image.
        dot_rgb: dot colour, RGB 0..255 (red, so the reward's red-pixel count sees it).
        background_rgb: background colour, RGB 0..255.
        window_name: title of the OpenCV window.
        fullscreen: True for a borderless full-screen window, False for a normal window.
    """

    motion: TargetConfig = field(default_factory=_screen_motion_default)
    width: int = 1920
    height: int = 1080
    radius_px: int = 40
    dot_rgb: tuple[int, int, int] = (255, 0, 0)
    background_rgb: tuple[int, int, int] = (0, 0, 0)
    window_name: str = "rtrl target"
    fullscreen: bool = True

    def __post_init__(self) -> None:
        for name in ("width", "height", "radius_px"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TargetDisplayConfig.{name}={value!r}: expected a positive int (pixels)")
        for name in ("dot_rgb", "background_rgb"):
            value = tuple(getattr(self, name))
            if len(value) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in value):
                raise ValueError(f"TargetDisplayConfig.{name}={value!r}: expected 3 ints in 0..255 (R, G, B)")
            setattr(self, name, value)
        low, high = np.array(self.motion.low), np.array(self.motion.high)
        if np.any(low < 0) or np.any(high > 1):
            raise ValueError(
                f"TargetDisplayConfig.motion box low={self.motion.low}, high={self.motion.high} "
                "leaves the screen; use normalised screen coordinates in 0..1"
            )


def draw_target(
    position: np.ndarray,
    width: int,
    height: int,
    radius_px: int,
    dot_rgb: tuple[int, int, int] = (255, 0, 0),
    background_rgb: tuple[int, int, int] = (0, 0, 0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Draw the frame the target window shows: a filled dot on a plain background.

    Args:
        position: (u, v) or (u, v, _) dot centre in normalised screen coordinates: u = 0 is
            the left edge, u = 1 the right; v = 0 the top, v = 1 the bottom.
        width: frame width in pixels.
        height: frame height in pixels.
        radius_px: dot radius in pixels.
        dot_rgb: dot colour, RGB.
        background_rgb: background colour, RGB.
        out: optional uint8 (height, width, 3) array to draw into (saves an allocation per frame).

    Returns:
        uint8 (height, width, 3) frame in BGR channel order, as `cv2.imshow` expects.
    """
    frame = np.empty((height, width, 3), np.uint8) if out is None else out
    frame[:] = background_rgb[::-1]
    cx = float(position[0]) * (width - 1)
    cy = float(position[1]) * (height - 1)
    # Only touch the dot's bounding box: full-frame distance maps cost ~20 ms at 1920x1080.
    x0, x1 = max(int(np.floor(cx - radius_px)), 0), min(int(np.ceil(cx + radius_px)) + 1, width)
    y0, y1 = max(int(np.floor(cy - radius_px)), 0), min(int(np.ceil(cy + radius_px)) + 1, height)
    if x0 < x1 and y0 < y1:
        ys, xs = np.ogrid[y0:y1, x0:x1]
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius_px ** 2
        frame[y0:y1, x0:x1][inside] = dot_rgb[::-1]
    return frame


def display_problem(
    build_information: str | None = None,
    environ: dict[str, str] | None = None,
    platform: str = sys.platform,
) -> str | None:
    """Say why no OpenCV window can be shown here, or None if one can.

    Args:
        build_information: `cv2.getBuildInformation()` text; None reads the installed OpenCV.
        environ: environment variables; None reads `os.environ`.
        platform: `sys.platform`; macOS and Windows need no $DISPLAY.

    Returns:
        A sentence naming the problem and what to do, or None.
    """
    if build_information is None:
        try:
            import cv2
        except ImportError:
            return f"OpenCV is not installed; install it with GUI support: {INSTALL_HINT}"
        build_information = cv2.getBuildInformation()
    environ = os.environ if environ is None else environ
    match = re.search(r"^\s*GUI:\s*(.+?)\s*$", build_information, re.MULTILINE)
    gui = match.group(1) if match else "NONE"
    if gui.upper() == "NONE":
        return f"the installed OpenCV has no GUI backend (GUI: NONE), so it cannot open windows; {INSTALL_HINT}"
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return ("no display: $DISPLAY and $WAYLAND_DISPLAY are unset; run from the desktop session "
                "of the machine whose monitor lies under the arm, or export DISPLAY=:0")
    return None


class TargetDisplayCommunicator(Communicator):
    """Shows the red target dot full-screen and publishes where it is.

    Args:
        config: window, dot and motion settings; None for defaults.
        start_method: multiprocessing start method of the child ("fork", "spawn",
            "forkserver"); None: `communicators.communicator.DEFAULT_START_METHOD` (never fork).

    Raises:
        DeviceError: no window can be shown here (headless OpenCV or no display); raised on
            construction, before any process starts.
    """

    def __init__(self, config: TargetDisplayConfig | None = None, *, start_method: str | None = None) -> None:
        self.config = TargetDisplayConfig() if config is None else config
        problem = display_problem()
        if problem is not None:
            raise DeviceError(f"target display '{self.config.window_name}' cannot start: {problem}")
        super().__init__(
            sensor_args={"shape": (3,), "dtype": np.float64, "buffer_len": 4},
            actuator_args={"shape": (1,), "dtype": np.float64, "buffer_len": 2},
            use_sensor=True,
            use_actuator=True,
            sensor_rate_hz=self.config.motion.rate_hz,
            actuator_rate_hz=self.config.motion.rate_hz,
            actuator_timeout=None,  # a target needs no watchdog: a stale request changes nothing
            name="TargetDisplay",
            start_method=start_method,
        )

    # ----- hooks (run in the child process) -----

    def open_device(self) -> None:
        import cv2

        # OpenCV is used only in the child: GUI handles do not survive a fork.
        self._cv2 = cv2
        self._window_open = False
        self._target = TargetEpisodes(self.config.motion)
        self._frame = np.empty((self.config.height, self.config.width, 3), np.uint8)

    def _open_window(self) -> None:
        # Created in the sensor thread, the thread that pumps its events: some HighGUI backends
        # (Qt, Cocoa) only serve windows from the thread that made them.
        cv2, name = self._cv2, self.config.window_name
        try:
            cv2.namedWindow(name, cv2.WINDOW_NORMAL)
            if self.config.fullscreen:
                cv2.setWindowProperty(name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        except cv2.error as exc:
            raise DeviceError(f"target display '{name}' could not open its window: {exc}; "
                              f"{INSTALL_HINT}") from exc
        self._window_open = True

    def close_device(self) -> None:
        if getattr(self, "_window_open", False):
            try:
                self._cv2.destroyWindow(self.config.window_name)
                self._cv2.waitKey(1)  # lets the window system process the close
            except self._cv2.error:
                pass  # the window system already closed it (e.g. the session ended)

    def read_sensor(self) -> None:
        if not self._window_open:
            self._open_window()
        position, _ = self._target.position()
        c = self.config
        draw_target(position, c.width, c.height, c.radius_px, c.dot_rgb, c.background_rgb, out=self._frame)
        self._cv2.imshow(c.window_name, self._frame)
        self._cv2.waitKey(1)  # HighGUI draws only while events are pumped
        self.sensor_buffer.write(position, timestamp=time.monotonic())

    def send_command(self) -> None:
        if self.actuator_buffer.updated():
            data, _, _ = self.actuator_buffer.read_update()
            self._target.start_episode(float(data[-1, 0]))
