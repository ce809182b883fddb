"""OpenCV camera communicator fed by real MJPG video files written with cv2.VideoWriter.

Frame k of each test video is a solid colour from PALETTE, so a frame read from the shared
buffer can be checked against the file by its write index (the k-th frame delivered).
"""
import glob
import multiprocessing
import os
import re
import time

import cv2
import numpy as np
import pytest

from communicators.camera.opencv_camera_communicator import (
    OpenCVCameraCommunicator,
    OpenCVCameraConfig,
    SourceKind,
    to_rgb,
)
from communicators.errors import CommunicatorError

pytestmark = pytest.mark.timeout(60)

# Saturated RGB colours that survive JPEG compression far apart from each other.
PALETTE = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 255, 255),
                    (0, 0, 0), (255, 0, 255)], np.uint8)
TOLERANCE = 40  # per channel, after MJPG compression and resizing


def make_video(path, n_frames, fps, width=64, height=48):
    """Write an MJPG .avi whose frame k is PALETTE[k % len(PALETTE)], with k drawn on it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi files"
    for k in range(n_frames):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = PALETTE[k % len(PALETTE)][::-1]  # VideoWriter takes BGR
        # The number sits in the top-left corner; the colour checks use the bottom half.
        cv2.putText(frame, str(k), (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (128, 128, 128), 1)
        writer.write(frame)
    writer.release()
    return str(path)


def _colour(frame):
    """Median colour of the bottom half (away from the drawn frame number)."""
    return np.median(frame[frame.shape[0] // 2:].reshape(-1, 3), axis=0)


def _wait_for(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def _failure(comm):
    try:
        comm.raise_if_failed()
    except CommunicatorError as exc:
        return exc
    return None


def _segments():
    return set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*"))


@pytest.fixture
def camera():
    """Starts cameras and always closes them; checks nothing outlives the test."""
    segments_before = _segments()
    started = []

    def start(config, start_method=None):
        comm = OpenCVCameraCommunicator(config, start_method=start_method)
        started.append(comm)
        comm.start()
        return comm

    yield start
    for comm in started:
        comm.close()
    _wait_for(lambda: not multiprocessing.active_children(), timeout=5, what="children to exit")
    assert _segments() == segments_before, "shared-memory segments left behind"


def _collect(comm, until_frames, timeout=10.0):
    """{write index: frame} for frames seen while polling until `until_frames` were written."""
    frames = {}
    deadline = time.monotonic() + timeout
    while comm.sensor_buffer.num_writes < until_frames:
        assert time.monotonic() < deadline, f"only {comm.sensor_buffer.num_writes} frames arrived"
        if comm.sensor_buffer.num_writes:
            data, _, idx = comm.sensor_buffer.read(window_len=1)
            frames[int(idx[-1])] = data[-1].copy()
        time.sleep(0.002)
    return frames


@pytest.mark.parametrize(
    "size, start_method",
    [((64, 48), "fork"), ((32, 24), "fork"), ((32, 24), "spawn"), ((32, 24), "forkserver")],
    ids=["native-64x48-fork", "resized-32x24-fork", "resized-32x24-spawn", "resized-32x24-forkserver"],
)
def test_frames_arrive_as_rgb_uint8_matching_the_file(tmp_path, camera, size, start_method):
    path = make_video(tmp_path / "colours.avi", n_frames=30, fps=60)
    width, height = size
    comm = camera(OpenCVCameraConfig(source=path, width=width, height=height), start_method)
    frames = _collect(comm, until_frames=25)
    assert len(frames) >= 5
    for index, frame in frames.items():
        assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
        expected = PALETTE[index % len(PALETTE)]
        assert np.all(np.abs(_colour(frame) - expected) <= TOLERANCE), \
            f"frame {index}: colour {_colour(frame)}, file has {expected} (RGB)"


def test_file_is_played_at_its_recorded_frame_rate_with_capture_timestamps(tmp_path, camera):
    fps = 25.0
    path = make_video(tmp_path / "paced.avi", n_frames=60, fps=fps)
    comm = camera(OpenCVCameraConfig(source=path))
    _wait_for(lambda: comm.sensor_buffer.num_writes >= 2, what="the first frames")
    _, ts0, idx0 = comm.sensor_buffer.read(window_len=1)
    time.sleep(1.0)
    _, ts1, idx1 = comm.sensor_buffer.read(window_len=1)
    rate = (idx1[-1] - idx0[-1]) / (ts1[-1] - ts0[-1])
    # Unpaced, OpenCV decodes this file at >1000 fps; a loose band survives a loaded 2-core box.
    assert 0.6 * fps < rate < 1.4 * fps, f"played at {rate:.1f} fps, file records {fps}"
    assert ts1[-1] <= time.monotonic()


def test_fps_overrides_the_files_rate(tmp_path, camera):
    path = make_video(tmp_path / "slow.avi", n_frames=200, fps=10)
    comm = camera(OpenCVCameraConfig(source=path, fps=50.0))
    _wait_for(lambda: comm.sensor_buffer.num_writes >= 2, what="the first frames")
    _, ts0, idx0 = comm.sensor_buffer.read(window_len=1)
    time.sleep(1.0)
    _, ts1, idx1 = comm.sensor_buffer.read(window_len=1)
    rate = (idx1[-1] - idx0[-1]) / (ts1[-1] - ts0[-1])
    assert 30 < rate < 70, f"played at {rate:.1f} fps, asked for 50"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_end_of_file_reaches_the_parent_naming_the_camera_and_the_fix(tmp_path, camera, start_method):
    path = make_video(tmp_path / "short.avi", n_frames=10, fps=100)
    comm = camera(OpenCVCameraConfig(source=path, name="wrist"), start_method)
    _wait_for(lambda: _failure(comm) is not None, what="the end-of-file error")
    message = str(_failure(comm))
    assert "camera 'wrist' stopped: video file ended after 10 frames; set loop=True to replay it" in message
    assert comm.sensor_buffer.num_writes == 10


def _damage(path, first, last):
    """Overwrites the JPEG data of frames first..last-1 of an MJPG .avi with zeros, in place."""
    data = bytearray(open(path, "rb").read())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # JPEG SOI markers
    assert len(starts) > last, "the test video has fewer frames than the damage needs"
    data[starts[first]:starts[last]] = bytes(starts[last] - starts[first])
    open(path, "wb").write(bytes(data))
    return path


@pytest.mark.parametrize("loop", [False, True], ids=["once", "loop"])
def test_damaged_frames_are_told_apart_from_the_end_of_the_file(tmp_path, camera, loop):
    path = _damage(make_video(tmp_path / "damaged.avi", n_frames=30, fps=100), first=10, last=20)
    comm = camera(OpenCVCameraConfig(source=path, name="wrist", loop=loop))
    _wait_for(lambda: _failure(comm) is not None, what="the damaged-file error")
    message = str(_failure(comm))
    assert (f"camera 'wrist' stopped: video file {path!r} is damaged at frame 11 of the 30 it holds "
            "(it could not be read or decoded after 10 good frames); re-encode the file or use another one") in message
    assert "ended" not in message and comm.sensor_buffer.num_writes == 10


def test_loop_replays_the_file_from_the_start(tmp_path, camera):
    n_frames = 5
    path = make_video(tmp_path / "loop.avi", n_frames=n_frames, fps=100)
    comm = camera(OpenCVCameraConfig(source=path, loop=True))
    frames = _collect(comm, until_frames=4 * n_frames)
    assert _failure(comm) is None
    replayed = {i: f for i, f in frames.items() if i >= n_frames}
    assert replayed, "no frame from a second pass was seen"
    for index, frame in replayed.items():
        expected = PALETTE[(index % n_frames) % len(PALETTE)]
        assert np.all(np.abs(_colour(frame) - expected) <= TOLERANCE), f"frame {index} after the loop"


def test_missing_file_fails_before_start_with_the_path_and_the_options(tmp_path):
    missing = tmp_path / "nope.avi"
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"OpenCVCameraConfig.source={str(missing)!r}: no such file or device; give an existing video file")):
        OpenCVCameraConfig(source=missing)
    assert multiprocessing.active_children() == []


def test_a_file_that_is_not_a_video_fails_in_the_child_and_reaches_the_parent(tmp_path, camera):
    path = tmp_path / "notes.txt"
    path.write_text("not a video")
    comm = camera(OpenCVCameraConfig(source=str(path), name="scene"))
    _wait_for(lambda: _failure(comm) is not None, what="the open error")
    assert "camera 'scene' cannot be opened: OpenCV could not open video file" in str(_failure(comm))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(source=-1), ValueError, "OpenCVCameraConfig.source=-1: device indices start at 0"),
        (dict(source=1.5), TypeError, "OpenCVCameraConfig.source=1.5: expected a device index"),
        (dict(source=0, width=0), ValueError, "OpenCVCameraConfig.width=0: expected a positive int"),
        (dict(source=0, fps=0), ValueError, "OpenCVCameraConfig.fps=0: expected a number > 0 or None"),
        (dict(source="rtsp://cam/stream", loop=True), ValueError, "loop=True needs a video file"),
    ],
    ids=["negative-index", "float-source", "zero-width", "zero-fps", "loop-on-stream"],
)
def test_bad_config_names_the_field(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        OpenCVCameraConfig(**kwargs)


def test_source_kinds_are_told_apart(tmp_path):
    path = make_video(tmp_path / "k.avi", n_frames=1, fps=10)
    assert OpenCVCameraConfig(source=path).kind is SourceKind.FILE
    assert OpenCVCameraConfig(source="2").source == 2
    assert OpenCVCameraConfig(source=2).kind is SourceKind.DEVICE
    assert OpenCVCameraConfig(source="rtsp://cam/stream").kind is SourceKind.STREAM
    assert OpenCVCameraConfig(source=path).name == path


@pytest.mark.parametrize("channels", [None, 3, 4], ids=["grey", "bgr", "bgra"])
def test_to_rgb_converts_every_opencv_layout(channels):
    if channels is None:
        frame = np.full((48, 64), 200, np.uint8)
        expected = [200, 200, 200]
    else:
        frame = np.zeros((48, 64, channels), np.uint8)
        frame[..., 0] = 255  # blue in OpenCV's BGR order
        expected = [0, 0, 255]
    rgb = to_rgb(frame, 32, 24)
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert rgb[12, 16].tolist() == expected
