"""Benchmark the simulation: real-time factor of the arm process and render capacity.

Measures, on this machine:
1. The sim arm (FrankaSimCommunicator) over `--seconds` of wall time while a wrist camera
   communicator renders at `--camera-fps` and this process sends a new velocity command every
   40 ms, as the env would: real-time factor, batch lateness, state publication rate, and the
   frame rate the camera achieved.
2. Render capacity of a SimCameraCommunicator process asked for 1000 fps (beside the arm), per
   camera.
3. Render capacity in one process: frames per second of `mujoco.Renderer` for the wrist and scene
   cameras at `--width` x `--height`, including posing the scene as the camera communicator does.

Prints the figures and writes them as JSON to `--out`.

Usage:
    python examples/benchmark_sim.py                 # 60 s, writes benchmark_sim.json
    python examples/benchmark_sim.py --seconds 5 --frames 100 --out /tmp/b.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import communicators.sim.physics  # noqa: F401  (first: sets MUJOCO_GL=egl before mujoco loads)
from communicators.franka.kinematics import READY_POSE
from communicators.sim.physics import scene
from communicators.sim.physics.franka_physics import FrankaPhysics
from communicators.sim.franka_sim_communicator import (
    STATS_LATENESS_MS, STATS_RTF, STATS_STEPS, FrankaSimCommunicator, FrankaSimConfig,
)
from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="wall time of the RTF run, s")
    parser.add_argument("--camera-fps", type=float, default=30.0,
                        help="rate of the wrist camera running beside the arm, Hz (0: no camera)")
    parser.add_argument("--frames", type=int, default=500, help="frames per render-capacity test")
    parser.add_argument("--width", type=int, default=160, help="image width, pixels")
    parser.add_argument("--height", type=int, default=120, help="image height, pixels")
    parser.add_argument("--fifo-priority", type=int, default=None,
                        help="run the physics thread under SCHED_FIFO at this priority (root)")
    parser.add_argument("--out", default="benchmark_sim.json", help="JSON file to write")
    args = parser.parse_args(argv)
    if args.seconds <= 1.0:
        parser.error(f"--seconds={args.seconds}: give more than 1 s")
    if args.frames < 10:
        parser.error(f"--frames={args.frames}: give at least 10")
    return args


def benchmark_realtime(seconds: float, camera_fps: float, width: int, height: int,
                       fifo_priority: int | None = None) -> dict:
    """Run the arm (and a wrist camera) for `seconds` of wall time; return the figures."""
    arm = FrankaSimCommunicator(FrankaSimConfig(fifo_priority=fifo_priority))
    camera = None
    if camera_fps > 0:
        camera = SimCameraCommunicator(SimCameraConfig(width=width, height=height, fps=camera_fps),
                                       arm.sensor_buffer, None)
    rng = np.random.default_rng(0)
    lateness = []
    try:
        arm.start()
        if camera is not None:
            camera.start()
        while arm.stats_buffer.num_writes == 0:
            arm.raise_if_failed()
            time.sleep(0.01)
        time.sleep(1.0)  # let start-up settle; measure steady state only
        stats0, t0, _ = arm.stats_buffer.latest()
        writes0 = arm.sensor_buffer.num_writes
        frames0 = camera.sensor_buffer.num_writes if camera is not None else 0
        start = time.monotonic()
        next_cycle = start
        last_stats_idx = -1
        while time.monotonic() - start < seconds:
            next_cycle += 0.04
            # A bounded random walk around the ready pose, like an exploring policy.
            q = arm.sensor_buffer.latest()[0][:7]
            arm.actuator_buffer.write(0.3 * rng.uniform(-1, 1, 7) - 0.5 * (q - READY_POSE))
            data, _, idx = arm.stats_buffer.latest()
            if idx != last_stats_idx:
                lateness.append(data[STATS_LATENESS_MS])
                last_stats_idx = idx
            arm.raise_if_failed()
            if camera is not None:
                camera.raise_if_failed()
            time.sleep(max(0.0, next_cycle - time.monotonic()))
        stats1, t1, _ = arm.stats_buffer.latest()
        elapsed = time.monotonic() - start
        writes = arm.sensor_buffer.num_writes - writes0
        frames = (camera.sensor_buffer.num_writes - frames0) if camera is not None else 0
        timestep = arm.config.physics.timestep
    finally:
        if camera is not None:
            camera.close()
        arm.close()
    sim_seconds = (stats1[STATS_STEPS] - stats0[STATS_STEPS]) * timestep
    lateness = np.array(lateness)
    return {
        "wall_seconds": float(t1 - t0),
        "sim_seconds": float(sim_seconds),
        "real_time_factor": float(sim_seconds / (t1 - t0)),
        "real_time_factor_since_start": float(stats1[STATS_RTF]),
        "physics_timestep_s": timestep,
        "state_publish_rate_hz": writes / elapsed,
        "batch_lateness_ms_p50_of_window_max": float(np.percentile(lateness, 50)),
        "batch_lateness_ms_p99_of_window_max": float(np.percentile(lateness, 99)),
        "batch_lateness_ms_max": float(lateness.max()),
        "fifo_priority": fifo_priority,
        "camera_fps_requested": camera_fps,
        "camera_fps_achieved": frames / elapsed,
    }


def benchmark_render(frames: int, width: int, height: int) -> dict:
    """Frames per second of posing + rendering each camera in this process."""
    import mujoco

    physics = FrankaPhysics()
    renderer = mujoco.Renderer(physics.model, height, width)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    poses = READY_POSE + rng.uniform(-0.3, 0.3, size=(frames, 7))
    results = {}
    try:
        for cam in scene.CAMERAS:
            renderer.update_scene(physics.data, camera=cam)
            renderer.render(out=out)  # warm-up: first frame uploads meshes
            start = time.perf_counter()
            for q in poses:
                physics.set_joint_positions(q)
                renderer.update_scene(physics.data, camera=cam)
                renderer.render(out=out)
            results[f"render_fps_{cam}"] = frames / (time.perf_counter() - start)
    finally:
        renderer.close()
    return results


def benchmark_camera_communicators(width: int, height: int, seconds: float = 3.0) -> dict:
    """Frames per second each SimCameraCommunicator delivers when asked for 1000 fps."""
    results = {}
    arm = FrankaSimCommunicator()
    try:
        arm.start()
        for cam in scene.CAMERAS:
            camera = SimCameraCommunicator(
                SimCameraConfig(camera=cam, width=width, height=height, fps=1000.0),
                arm.sensor_buffer, None)
            try:
                camera.start()
                while camera.sensor_buffer.num_writes < 5:  # started and warmed up
                    camera.raise_if_failed()
                    time.sleep(0.01)
                first = camera.sensor_buffer.num_writes
                time.sleep(seconds)
                results[f"camera_communicator_max_fps_{cam}"] = (
                    camera.sensor_buffer.num_writes - first) / seconds
            finally:
                camera.close()
    finally:
        arm.close()
    return results


def main(argv: list[str] | None = None) -> dict:
    """Run both benchmarks, print and save the figures; returns them."""
    args = parse_args(argv)
    results = {
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "mujoco": __import__("mujoco").__version__},
        "image": {"width": args.width, "height": args.height},
    }
    # Real-time run first: a process that made a GL context must not fork renderers afterwards
    # (the forked child hangs, dependencies.md).
    results.update(benchmark_realtime(args.seconds, args.camera_fps, args.width, args.height,
                                      args.fifo_priority))
    results.update(benchmark_camera_communicators(args.width, args.height))
    results.update(benchmark_render(args.frames, args.width, args.height))
    for key, value in results.items():
        print(f"{key:40s} {value:.4g}" if isinstance(value, float) else f"{key:40s} {value}")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
