"""Benchmark the OpenCV camera (fed by a video file) and the sim target communicator.

Prints figures and writes them as JSON; asserts nothing (timing targets do not belong in tests).

    python examples/benchmark_camera_target.py --out /tmp/bench_camera_target.json

Camera, per frame size: delivered fps against the file's fps, capture-period jitter, and the
age of the newest frame when the parent sees it (decode + colour conversion + buffer write +
polling; the capture timestamp is taken right after grab(), before decoding).
Target: publish-period percentiles, and how long a new-episode request takes to show up.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from communicators.camera.opencv_camera_communicator import OpenCVCameraCommunicator, OpenCVCameraConfig
from communicators.sim.sim_target_communicator import SimTargetCommunicator
from communicators.target.target_motion import TargetConfig, TargetMotion


def _percentiles_ms(values: np.ndarray) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(values, q) * 1e3) for q in (50, 90, 99)} | \
        {"max": float(values.max() * 1e3)}


def _write_video(path: Path, width: int, height: int, fps: float, n_frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    rng = np.random.default_rng(0)
    for _ in range(n_frames):
        # Noise compresses badly: a worst case for MJPG decoding.
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    writer.release()


def _poll_frames(buffer, duration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(write indices, capture timestamps, ages at first sight in s) of frames seen while polling."""
    idxs, stamps, ages = [], [], []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        if buffer.updated():
            _, ts, idx = buffer.read_update(window_len=1)
            ages.append(time.monotonic() - ts[-1])
            idxs.append(idx[-1])
            stamps.append(ts[-1])
        time.sleep(0.0005)
    return np.array(idxs), np.array(stamps), np.array(ages)


def _wait_for_first_write(comm) -> None:
    while comm.sensor_buffer.num_writes == 0:
        comm.raise_if_failed()
        time.sleep(0.001)


def bench_camera(width: int, height: int, fps: float, duration: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.avi"
        _write_video(path, width, height, fps, n_frames=int(fps * (duration + 2)))
        comm = OpenCVCameraCommunicator(OpenCVCameraConfig(source=str(path), width=width, height=height))
        comm.start()
        try:
            _wait_for_first_write(comm)
            idxs, stamps, ages = _poll_frames(comm.sensor_buffer, duration)
            comm.raise_if_failed()
        finally:
            comm.close()
    consecutive = np.diff(idxs) == 1
    periods = np.diff(stamps)[consecutive]
    return {
        "size": f"{width}x{height}", "file_fps": fps,
        "delivered_fps": float((idxs[-1] - idxs[0]) / (stamps[-1] - stamps[0])),
        "frames_missed_by_poller": int(np.sum(np.diff(idxs) - 1)),
        "period_ms": _percentiles_ms(periods),
        "age_at_first_sight_ms": _percentiles_ms(ages),
    }


def bench_target(rate_hz: float, duration: float, requests: int) -> dict:
    config = TargetConfig(mode="reaching", seed=0, rate_hz=rate_hz)
    comm = SimTargetCommunicator(config)
    comm.start()
    try:
        _wait_for_first_write(comm)
        idxs, stamps, _ = _poll_frames(comm.sensor_buffer, duration)
        latencies = []
        for episode in range(1, requests + 1):
            motion = TargetMotion(config)
            motion.new_episode(config.episode_rng(episode))
            expected = motion.position(0.0)
            sent = time.monotonic()
            comm.actuator_buffer.write(np.array([float(episode)]))
            while not np.array_equal(comm.sensor_buffer.latest()[0], expected):
                comm.raise_if_failed()
                time.sleep(0.0002)
            latencies.append(time.monotonic() - sent)
            time.sleep(0.02)
        comm.raise_if_failed()
    finally:
        comm.close()
    periods = np.diff(stamps)[np.diff(idxs) == 1]
    return {
        "rate_hz": rate_hz,
        "published_hz": float((idxs[-1] - idxs[0]) / (stamps[-1] - stamps[0])),
        "period_ms": _percentiles_ms(periods),
        "episode_request_latency_ms": _percentiles_ms(np.array(latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark_camera_target.json", help="JSON output path")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    args = parser.parse_args()
    results = {
        "camera": [bench_camera(160, 120, 30.0, args.duration), bench_camera(640, 480, 30.0, args.duration)],
        "target": bench_target(100.0, args.duration, requests=50),
    }
    print(json.dumps(results, indent=2))
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
