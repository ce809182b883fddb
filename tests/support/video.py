"""Video files for tests: the one OpenCV source this machine has (no USB camera can exist here)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_clip(path: str | Path, n_frames: int, fps: float, width: int = 32, height: int = 24) -> str:
    """Writes an MJPG .avi of ``n_frames`` uniform grey frames, frame k of level ``40 * k % 256``;
    returns its path as a string."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "this OpenCV build cannot write MJPG .avi files"
    for k in range(n_frames):
        writer.write(np.full((height, width, 3), 40 * k % 256, np.uint8))
    writer.release()
    return str(path)
