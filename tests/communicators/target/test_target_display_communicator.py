"""Target display: the frame it draws, and the clear error where no window can be shown.

The window itself needs a GUI build of OpenCV and a display, which this test machine lacks
(opencv-python-headless, no $DISPLAY); the drawing is a pure function and is tested here, and
the no-display path is the real one on this machine.
"""
import glob
import multiprocessing
import os
import re

import numpy as np
import pytest

from communicators.errors import DeviceError
from communicators.target.target_display_communicator import (
    TargetDisplayCommunicator,
    TargetDisplayConfig,
    display_problem,
    draw_target,
)
from communicators.target.target_motion import TargetConfig

pytestmark = pytest.mark.timeout(30)

RED_BGR = np.array([0, 0, 255], np.uint8)
W, H, R = 320, 180, 10


def _red_mask(frame: np.ndarray) -> np.ndarray:
    return np.all(frame == RED_BGR, axis=-1)


def test_dot_is_drawn_red_at_its_normalised_position_on_black():
    frame = draw_target(np.array([0.25, 0.75, 0.0]), W, H, R)
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    red = _red_mask(frame)
    ys, xs = np.nonzero(red)
    assert xs.mean() == pytest.approx(0.25 * (W - 1), abs=0.5)
    assert ys.mean() == pytest.approx(0.75 * (H - 1), abs=0.5)
    assert red.sum() == pytest.approx(np.pi * R ** 2, rel=0.1)
    assert np.all(frame[~red] == 0), "background must be black"


def test_dot_at_the_top_left_corner_is_clipped_not_wrapped():
    frame = draw_target((0.0, 0.0), W, H, R)
    red = _red_mask(frame)
    assert red[0, 0] and not red[-1, -1] and not red[0, -1] and not red[-1, 0]
    # A quarter disc remains on screen.
    assert red.sum() == pytest.approx(np.pi * R ** 2 / 4, rel=0.15)


def test_colours_are_given_in_rgb_and_drawn_in_bgr_into_the_given_frame():
    out = np.zeros((H, W, 3), np.uint8)
    frame = draw_target((0.5, 0.5), W, H, R, dot_rgb=(10, 20, 30), background_rgb=(200, 100, 50), out=out)
    assert frame is out
    assert frame[H // 2, W // 2].tolist() == [30, 20, 10]
    assert frame[0, 0].tolist() == [50, 100, 200]


def test_headless_opencv_is_reported_with_what_to_install():
    import cv2

    problem = display_problem()
    if re.search(r"GUI:\s*NONE", cv2.getBuildInformation()) is None:
        pytest.skip("this machine's OpenCV has a GUI backend")
    assert problem is not None
    assert "no GUI backend" in problem and "pip install opencv-python" in problem


GTK_BUILD = "  GUI:                           GTK3\n    GTK+:                        YES (ver 3.24)\n"


@pytest.mark.parametrize(
    "environ, platform, expected",
    [
        ({}, "linux", "$DISPLAY and $WAYLAND_DISPLAY are unset"),
        ({"DISPLAY": ":0"}, "linux", None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
        ({}, "darwin", None),
    ],
    ids=["linux-no-display", "linux-x11", "linux-wayland", "macos"],
)
def test_gui_build_needs_a_display_on_linux(environ, platform, expected):
    # A GUI build of OpenCV cannot be installed beside the headless one in this venv, so its
    # build-information line is given as text; everything else is the real check.
    problem = display_problem(build_information=GTK_BUILD, environ=environ, platform=platform)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_communicator_fails_before_any_process_or_segment_exists_when_no_display():
    if display_problem() is None:
        pytest.skip("this machine can show windows")
    segments_before = set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*"))
    with pytest.raises(DeviceError, match=re.escape("target display 'rtrl target' cannot start: ")):
        TargetDisplayCommunicator(TargetDisplayConfig())
    assert multiprocessing.active_children() == []
    assert set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*")) == segments_before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=0), "TargetDisplayConfig.width=0: expected a positive int"),
        (dict(radius_px=2.5), "TargetDisplayConfig.radius_px=2.5"),
        (dict(dot_rgb=(255, 0)), "TargetDisplayConfig.dot_rgb=(255, 0): expected 3 ints in 0..255"),
        (dict(motion=TargetConfig()), "leaves the screen; use normalised screen coordinates"),
    ],
    ids=["zero-width", "fractional-radius", "short-colour", "world-box"],
)
def test_bad_display_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TargetDisplayConfig(**kwargs)


def test_a_window_that_fails_to_open_in_the_child_reaches_the_parent(monkeypatch):
    # Pretend the parent-side check passed (as it would on a desktop whose GUI then fails, e.g.
    # a display that went away); the child then meets this machine's real headless OpenCV.
    import cv2

    import communicators.target.target_display_communicator as module
    from communicators.errors import CommunicatorError

    if re.search(r"GUI:\s*NONE", cv2.getBuildInformation()) is None:
        pytest.skip("this machine's OpenCV has a GUI backend")
    monkeypatch.setattr(module, "display_problem", lambda: None)
    segments_before = set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*"))
    comm = TargetDisplayCommunicator(TargetDisplayConfig(width=64, height=48, radius_px=4),
                                     start_method="fork")
    try:
        comm.start()
        comm.join(10)
        with pytest.raises(CommunicatorError, match="target display 'rtrl target' could not open its window"):
            comm.raise_if_failed()
        assert comm.sensor_buffer.num_writes == 0
    finally:
        comm.close()
    assert multiprocessing.active_children() == []
    assert set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*")) == segments_before
