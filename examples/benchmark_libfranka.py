"""Benchmark the libfranka backend against franka-sim: state rate and command latency.

Starts franka-sim (MuJoCo FR3 speaking the Franka protocol, reflexes enforced) on a free loopback
address and a FrankaLibfrankaCommunicator connected to it, then measures:

- state rate: sensor-buffer writes per second (one per 1 kHz control cycle), the gaps between
  state timestamps, and the age of the newest state when the env side reads it;
- command pickup: from a command's timestamp to the 1 kHz cycle that first uses it (the loop's own
  figure, buffer -> robot transport only);
- command to motion: from writing a joint-7 velocity step into the actuator buffer to the first
  state whose joint-7 velocity has crossed half the step (state timestamp). This includes the
  jerk-limited ramp of the VelocityShaper (about 50 ms to reach 0.15 rad/s with the default
  3 rad/s^2 and 1000 rad/s^3),
  the robot's velocity controller and the state's way back;
- loop health: control cycles, missed cycles and reflexes over the run;
- with --env-episodes N: the action-cycle table (|period - dt|, overruns, drift, observation age)
  of FrankaVisualReacher on backend="libfranka" with the sim camera and target, random actions.

Prints a table and writes JSON. Run:
    python examples/benchmark_libfranka.py --seconds 5 --trials 20 --out results/benchmark_libfranka.json
Needs scripts/install_franka_sim.sh (pylibfranka in this venv, franka-sim in .venv-franka-sim).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from communicators.franka.state import DQ
from communicators.franka.libfranka.franka_libfranka_communicator import FrankaLibfrankaCommunicator
from communicators.franka.libfranka.franka_sim_process import (
    FrankaSimProcess,
    FrankaSimProcessConfig,
    free_loopback_host,
)
from communicators.franka.libfranka.libfranka_config import LibfrankaConfig

ENV_PERIOD = 0.04  # the env's 25 Hz cycle


def _summary_ms(values_s) -> dict[str, float]:
    v = np.asarray(values_s, dtype=np.float64) * 1e3
    if v.size == 0:
        return {"n": 0}
    return {"mean": float(v.mean()), "p50": float(np.percentile(v, 50)),
            "p95": float(np.percentile(v, 95)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max()), "n": int(v.size)}


def measure_state(comm: FrankaLibfrankaCommunicator, seconds: float) -> dict:
    """State rate, timestamp gaps and age at read, polled like an env would."""
    buf = comm.sensor_buffer
    writes0, t0 = buf.num_writes, time.monotonic()
    stamps: dict[int, float] = {}
    ages, last, last_ring = [], -1, 0.0
    while time.monotonic() - t0 < seconds:
        _, ts, idx = buf.latest()
        if idx != last:
            ages.append(time.monotonic() - ts)
            last = idx
        if time.monotonic() - last_ring > 0.02:  # the whole ring (64 ms) now and then: no gap unseen
            _, ts_ring, idx_ring = buf.read(window_len=buf.buffer_len)
            stamps.update((int(i), float(t)) for i, t in zip(idx_ring, ts_ring) if i >= 0)
            last_ring = time.monotonic()
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    gaps = [stamps[i + 1] - stamps[i] for i in stamps if i + 1 in stamps]
    return {"rate_hz": (buf.num_writes - writes0) / elapsed,
            "timestamp_gap_ms": _summary_ms(gaps), "age_at_read_ms": _summary_ms(ages)}


def measure_pickup(comm: FrankaLibfrankaCommunicator, commands: int) -> dict:
    """Command timestamp -> first 1 kHz cycle using it, as the loop reports it."""
    latencies = []
    for _ in range(commands):
        comm.actuator_buffer.write(np.zeros(7))
        time.sleep(0.03)  # the stats slot is refreshed every 10 ms
        latencies.append(comm.stats().pickup_latency)
        time.sleep(ENV_PERIOD - 0.03)
    return {"pickup_ms": _summary_ms(latencies)}


def measure_command_to_motion(comm: FrankaLibfrankaCommunicator, trials: int, step: float = 0.3) -> dict:
    """Actuator-buffer write -> first state whose joint-7 velocity crossed half the step."""
    latencies, missed = [], 0
    for k in range(trials):
        sign = 1.0 if k % 2 == 0 else -1.0
        for _ in range(10):  # settle at rest for 0.4 s, commands kept fresh
            comm.actuator_buffer.write(np.zeros(7))
            time.sleep(ENV_PERIOD)
        command = np.zeros(7)
        command[6] = sign * step
        t_write = time.monotonic()
        comm.actuator_buffer.write(command, timestamp=t_write)
        last_write, found = t_write, False
        while time.monotonic() - t_write < 1.0:
            window, stamps, _ = comm.sensor_buffer.read(window_len=comm.sensor_buffer.buffer_len)
            crossed = (stamps > t_write) & (sign * window[:, DQ][:, 6] > 0.5 * step)
            if crossed.any():
                latencies.append(stamps[np.argmax(crossed)] - t_write)
                found = True
                break
            if time.monotonic() - last_write > ENV_PERIOD:
                comm.actuator_buffer.write(command)
                last_write = time.monotonic()
            time.sleep(0.001)
        missed += not found
        comm.raise_if_failed()
    comm.actuator_buffer.write(np.zeros(7))
    return {"command_to_motion_ms": _summary_ms(latencies), "missed": missed, "step_rad_s": step}


def measure_env_cycle(host: str, episodes: int, episode_length_s: float = 4.0) -> dict:
    """RTRLBaseEnv's action-cycle report for the visual reacher on this backend (random actions)."""
    import gymnasium

    import rtrl_env  # noqa: F401 - registers the ids
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
    from communicators.sim.sim_target_communicator import SimTargetCommunicator
    from communicators.target.target_motion import TargetConfig

    camera_config = SimCameraConfig(width=160, height=120, fps=30)
    env = gymnasium.make(
        "FrankaVisualReacher-v0", backend="libfranka", robot_config=LibfrankaConfig(robot_ip=host),
        camera=lambda built: SimCameraCommunicator(
            camera_config, built["robot"].sensor_buffer, built["target"].sensor_buffer),
        target_communicator=lambda built: SimTargetCommunicator(TargetConfig(seed=0)),
        episode_length_s=episode_length_s,
    )
    try:
        rng = np.random.default_rng(0)
        reports = []
        for episode in range(episodes):
            env.reset(seed=episode)  # homing is not part of the cycle figures
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
                done = terminated or truncated
            reports.append(env.unwrapped.timing_report().as_dict())
        stats = env.unwrapped.devices["robot"].stats()
    finally:
        env.close()
    return {"episodes": reports, "robot_reflexes": stats.reflexes,
            "robot_motion_limit_reflexes": stats.motion_limit_reflexes}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="state measurement duration, s")
    parser.add_argument("--trials", type=int, default=20, help="command-to-motion trials")
    parser.add_argument("--pickups", type=int, default=100, help="commands for the pickup latency")
    parser.add_argument("--env-episodes", type=int, default=0,
                        help="also run this many 4 s visual-reacher episodes for the action-cycle table")
    parser.add_argument("--realtime-priority", type=int, default=None,
                        help="SCHED_FIFO priority of the 1 kHz loop thread (needs root); default: none")
    parser.add_argument("--out", default="results/benchmark_libfranka.json", help="JSON output path")
    args = parser.parse_args(argv)

    host = free_loopback_host()
    with FrankaSimProcess(FrankaSimProcessConfig(host=host)) as sim:
        comm = FrankaLibfrankaCommunicator(
            LibfrankaConfig(robot_ip=sim.host, realtime_priority=args.realtime_priority))
        comm.start()
        try:
            comm.wait_for_state(timeout=20.0)
            results = {"state": measure_state(comm, args.seconds)}
            results["pickup"] = measure_pickup(comm, args.pickups)
            results["command"] = measure_command_to_motion(comm, args.trials)
            stats = comm.stats()
            results["loop"] = {"cycles": stats.cycles, "missed_cycles": stats.missed_cycles,
                               "reflexes": stats.reflexes, "comm_reflexes": stats.comm_reflexes,
                               "motion_limit_reflexes": stats.motion_limit_reflexes}
        finally:
            comm.close()
        if args.env_episodes:
            results["env_cycle"] = measure_env_cycle(sim.host, args.env_episodes)
    results["machine"] = {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                          "server": "franka-sim 1.1.7 (MuJoCo), loopback", "host": host,
                          "realtime_priority": args.realtime_priority,
                          "load_average_1min": __import__("os").getloadavg()[0]}

    s, c, p = results["state"], results["command"], results["pickup"]
    print(f"{'libfranka backend vs franka-sim':<44}{'p50':>9}{'p99':>9}{'max':>9}")
    print(f"{'state rate (Hz)':<44}{s['rate_hz']:>9.1f}")
    for label, d in (("state timestamp gap (ms)", s["timestamp_gap_ms"]),
                     ("state age at read (ms)", s["age_at_read_ms"]),
                     ("command pickup by the 1 kHz loop (ms)", p["pickup_ms"]),
                     ("command -> half-step velocity (ms)", c["command_to_motion_ms"])):
        if d.get("n"):
            print(f"{label:<44}{d['p50']:>9.2f}{d['p99']:>9.2f}{d['max']:>9.2f}")
    loop = results["loop"]
    print(f"loop: {loop['cycles']} cycles, {loop['missed_cycles']} missed, {loop['reflexes']} reflexes "
          f"({loop['comm_reflexes']} comm, {loop['motion_limit_reflexes']} motion limits); "
          f"{c['missed']} of {args.trials} latency trials missed")
    for k, report in enumerate(results.get("env_cycle", {}).get("episodes", [])):
        print(f"env episode {k}: {report['steps']} steps of {report['dt_ms']:.0f} ms, |period - dt| "
              f"p50 {report['error_p50_ms']:.2f} p99 {report['error_p99_ms']:.2f} max "
              f"{report['error_max_ms']:.2f} ms, {report['overruns']} overruns, drift "
              f"{report['drift_ms']:.2f} ms, obs age p50 {report['obs_age_p50_ms']:.2f} p99 "
              f"{report['obs_age_p99_ms']:.2f} ms")
    if "env_cycle" in results:
        print(f"env: robot reflexes {results['env_cycle']['robot_reflexes']} "
              f"(motion limits {results['env_cycle']['robot_motion_limit_reflexes']})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
