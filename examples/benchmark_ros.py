"""Benchmark the ROS backend: state rate and command latency against the MuJoCo bridge node.

Starts a rosmaster on loopback, the bridge node (`communicators.franka.ros.bridge_node`) and a
FrankaROSCommunicator, then measures:

- state rate: sensor-buffer writes per second, and the gaps between state timestamps;
- state age: time.monotonic() when the env side sees a new state minus that state's timestamp;
- command latency: from writing a joint-7 velocity step into the actuator buffer to the first
  state whose joint-7 velocity has crossed half the step (timestamp of that state; includes the
  actuator loop period, ROS transport both ways, the bridge tick and the velocity servo's rise).

- the action cycle of FrankaVisualReacher2-v0 on backend="ros" (with the sim wrist camera and
  target), stepped with random actions: |period - dt| percentiles, overruns, drift and observation
  age from `RTRLBaseEnv.timing_report()` (the core issue's action-cycle table, for this backend).

Prints a table and writes JSON. Run: `python examples/benchmark_ros.py --seconds 5 --trials 20`.
Needs scripts/install_ros.sh.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    v = np.asarray(values_ms, dtype=np.float64)
    return {"mean": float(v.mean()), "p50": float(np.percentile(v, 50)),
            "p95": float(np.percentile(v, 95)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max()), "n": int(v.size)}


def _start_bridge(master, rate_hz: float) -> subprocess.Popen:
    from communicators.franka.ros.ros_master import ros_environment

    env = ros_environment(master.uri, ros_home=master.ros_home)
    proc = subprocess.Popen([sys.executable, "-m", "communicators.franka.ros.bridge_node",
                             "--master-uri", master.uri, "--rate-hz", str(rate_hz)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "bridge ready" not in line:
        proc.kill()
        raise RuntimeError(f"bridge did not start: {line!r}")
    return proc


def measure_state(comm, seconds: float) -> dict:
    """State rate, timestamp gaps and age as the env side sees them."""
    buf = comm.sensor_buffer
    n0, t0 = buf.num_writes, time.monotonic()
    ages, stamp_of, last_idx = [], {}, -1
    while time.monotonic() - t0 < seconds:
        _, ts, idx = buf.latest()
        if idx != last_idx:
            ages.append((time.monotonic() - ts) * 1e3)
            last_idx = idx
        # The whole ring, so no state is missed between two polls.
        _, ts_window, idx_window = buf.read(window_len=buf.buffer_len)
        stamp_of.update(zip(idx_window.tolist(), ts_window.tolist()))
        time.sleep(0.0005)
    elapsed = time.monotonic() - t0
    gaps = [(stamp_of[i + 1] - stamp_of[i]) * 1e3 for i in stamp_of if i + 1 in stamp_of]
    return {
        "rate_hz": (buf.num_writes - n0) / elapsed,
        "timestamp_gap_ms": _percentiles(gaps),
        "age_at_read_ms": _percentiles(ages),
    }


def measure_command_latency(comm, trials: int, step: float = 0.3) -> dict:
    """Actuator-buffer write -> first state showing half the commanded joint-7 velocity."""
    latencies, seen_ms = [], []
    for k in range(trials):
        sign = 1.0 if k % 2 == 0 else -1.0
        # Settle at zero velocity first.
        settle_end = time.monotonic() + 0.3
        while time.monotonic() < settle_end:
            comm.actuator_buffer.write(np.zeros(7))
            time.sleep(0.02)
        cmd = np.zeros(7)
        cmd[6] = sign * step
        t_cmd = time.monotonic()
        comm.actuator_buffer.write(cmd)
        deadline = t_cmd + 1.0
        last_write = t_cmd
        while time.monotonic() < deadline:
            state, ts, _ = comm.sensor_buffer.latest()
            if ts > t_cmd and sign * state[13] > 0.5 * step:
                latencies.append((ts - t_cmd) * 1e3)
                seen_ms.append((time.monotonic() - t_cmd) * 1e3)
                break
            if time.monotonic() - last_write > 0.02:  # keep the command fresh (watchdog)
                comm.actuator_buffer.write(cmd)
                last_write = time.monotonic()
            time.sleep(0.0002)
        comm.raise_if_failed()
    comm.actuator_buffer.write(np.zeros(7))
    return {"state_shows_command_ms": _percentiles(latencies),
            "env_sees_it_ms": _percentiles(seen_ms), "missed": trials - len(latencies)}


def measure_env_cycle(backend: str, robot_config, steps: int, dt: float) -> dict:  # noqa: ANN001
    """Steps FrankaVisualReacher2-v0 on a robot ``backend`` (the sim camera rendering the pose it
    publishes, the sim target) with random actions; returns its timing report."""
    import gymnasium

    import rtrl_env  # noqa: F401 - registers the ids
    from communicators.sim.sim_camera_communicator import SimCameraCommunicator, SimCameraConfig
    from communicators.sim.sim_target_communicator import SimTargetCommunicator
    from communicators.target.target_motion import TargetConfig

    camera_config = SimCameraConfig(width=160, height=120, fps=30)
    env = gymnasium.make(
        "FrankaVisualReacher2-v0", backend=backend, dt=dt, episode_length_s=steps * dt, robot_config=robot_config,
        camera=lambda built: SimCameraCommunicator(
            camera_config, built["robot"].sensor_buffer, built["target"].sensor_buffer),
        target_communicator=lambda built: SimTargetCommunicator(TargetConfig(seed=0)),
    )
    try:
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(
                rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            if terminated or truncated:
                break
        return env.unwrapped.timing_report().as_dict()
    finally:
        env.close()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="state measurement duration, s")
    p.add_argument("--trials", type=int, default=20, help="command latency trials")
    p.add_argument("--rate-hz", type=float, default=1000.0, help="bridge publish rate, Hz")
    p.add_argument("--actuator-rate-hz", type=float, default=100.0,
                   help="communicator command publish rate, Hz")
    p.add_argument("--env-steps", type=int, default=250,
                   help="env steps for the action-cycle table (0 skips it)")
    p.add_argument("--dt", type=float, default=0.04, help="env action cycle, s")
    p.add_argument("--out", default="benchmark_ros.json", help="JSON output path")
    args = p.parse_args(argv)

    from communicators.franka.ros.franka_ros_communicator import FrankaROSCommunicator, FrankaROSConfig
    from communicators.franka.ros.ros_master import LocalRosMaster

    with LocalRosMaster() as master:
        # Logs of this run's nodes go to the master's temporary ROS_HOME, removed at the end.
        os.environ["ROS_HOME"], os.environ["ROS_LOG_DIR"] = master.ros_home, f"{master.ros_home}/log"
        bridge = _start_bridge(master, args.rate_hz)
        comm = FrankaROSCommunicator(FrankaROSConfig(
            master_uri=master.uri, ros_ip="127.0.0.1", transport="rospy",
            actuator_rate_hz=args.actuator_rate_hz))
        try:
            comm.start()
            deadline = time.monotonic() + 20
            while comm.sensor_buffer.num_writes == 0:
                comm.raise_if_failed()
                if time.monotonic() > deadline:
                    raise RuntimeError("no state from the bridge within 20 s")
                time.sleep(0.05)
            time.sleep(0.5)
            state = measure_state(comm, args.seconds)
            command = measure_command_latency(comm, args.trials)
            comm.close()
            cycle = measure_env_cycle("ros", FrankaROSConfig(master_uri=master.uri, ros_ip="127.0.0.1", transport="rospy"),
                                      args.env_steps, args.dt) if args.env_steps else None
        finally:
            comm.close()
            bridge.terminate()
            bridge.wait(timeout=10)
            bridge.stdout.close()

    result = {"backend": "ros", "bridge_rate_hz": args.rate_hz,
              "actuator_rate_hz": args.actuator_rate_hz, "machine": platform.machine(),
              "cpus": os.cpu_count(), "state": state, "command": command, "env_cycle": cycle}
    s, c = state, command["state_shows_command_ms"]
    print(f"ROS backend vs bridge node at {args.rate_hz:.0f} Hz "
          f"(actuator loop {args.actuator_rate_hz:.0f} Hz, {os.cpu_count()} CPUs)")
    print(f"  state rate             {s['rate_hz']:8.1f} Hz")
    print(f"  state timestamp gap    p50 {s['timestamp_gap_ms']['p50']:6.2f} ms   "
          f"p99 {s['timestamp_gap_ms']['p99']:6.2f} ms")
    print(f"  state age at read      p50 {s['age_at_read_ms']['p50']:6.2f} ms   "
          f"p99 {s['age_at_read_ms']['p99']:6.2f} ms")
    print(f"  command latency        mean {c['mean']:6.2f} ms  p50 {c['p50']:6.2f} ms  "
          f"p95 {c['p95']:6.2f} ms  max {c['max']:6.2f} ms  ({c['n']} trials, "
          f"{command['missed']} missed)")
    if cycle is not None:
        print(f"  env cycle (dt {cycle['dt_ms']:.0f} ms, {cycle['steps']} steps)  |period-dt| "
              f"p50 {cycle['error_p50_ms']:.2f}  p99 {cycle['error_p99_ms']:.2f}  max "
              f"{cycle['error_max_ms']:.2f} ms   overruns {cycle['overruns']}   drift "
              f"{cycle['drift_ms']:.2f} ms   obs age p50 {cycle['obs_age_p50_ms']:.1f}  p99 "
              f"{cycle['obs_age_p99_ms']:.1f} ms")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"  wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
