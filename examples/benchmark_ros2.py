"""Benchmark the ROS 2 backend: state rate and command latency against the MuJoCo bridge node.

Runs in a loopback-only network namespace of its own (DDS discovers by multicast on every
interface), with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its own ROS_DOMAIN_ID. Starts the
bridge node (`communicators.franka.ros2.bridge_node`) and a FrankaROS2Communicator, then measures,
with the same functions as examples/benchmark_ros.py:

- state rate: sensor-buffer writes per second, and the gaps between state timestamps;
- state age: time.monotonic() when the env side sees a new state minus that state's timestamp;
- command latency: from writing a joint-7 velocity step into the actuator buffer to the first
  state whose joint-7 velocity has crossed half the step (includes the actuator loop period, DDS
  both ways, the bridge tick and the velocity servo's rise);
- the action cycle of FrankaVisualReacher2-v0 on backend="ros2" (sim wrist camera and target),
  stepped with random actions: `RTRLBaseEnv.timing_report()`.

Prints a table and writes JSON. Needs root (for the namespace) and scripts/install_ros2.sh.
Run: `python examples/benchmark_ros2.py --seconds 5 --trials 20`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.benchmark_ros import measure_command_latency, measure_env_cycle, measure_state  # noqa: E402
from examples.loopback_namespace import enter_loopback_namespace  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _start_bridge(runtime, rate_hz: float) -> subprocess.Popen:
    env = runtime.environment()
    env["PYTHONPATH"] = REPO
    proc = subprocess.Popen([sys.executable, "-m", "communicators.franka.ros2.bridge_node",
                             "--rate-hz", str(rate_hz)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "bridge ready" not in line:
        proc.kill()
        raise RuntimeError(f"bridge did not start: {line!r}")
    return proc


def _wait_for_state(comm, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while comm.sensor_buffer.num_writes == 0:
        comm.raise_if_failed()
        if time.monotonic() > deadline:
            raise RuntimeError(f"no state from the bridge within {timeout} s")
        time.sleep(0.05)


def _print(result: dict) -> None:
    s, c, cycle = result["state"], result["command"]["state_shows_command_ms"], result["env_cycle"]
    print(f"ROS 2 backend vs bridge node at {result['bridge_rate_hz']:.0f} Hz "
          f"(actuator loop {result['actuator_rate_hz']:.0f} Hz, {result['cpus']} CPUs, "
          f"rmw_fastrtps_cpp, domain {result['domain_id']})")
    print(f"  state rate             {s['rate_hz']:8.1f} Hz")
    print(f"  state timestamp gap    p50 {s['timestamp_gap_ms']['p50']:6.2f} ms   "
          f"p99 {s['timestamp_gap_ms']['p99']:6.2f} ms")
    print(f"  state age at read      p50 {s['age_at_read_ms']['p50']:6.2f} ms   "
          f"p99 {s['age_at_read_ms']['p99']:6.2f} ms")
    print(f"  command latency        mean {c['mean']:6.2f} ms  p50 {c['p50']:6.2f} ms  "
          f"p99 {c['p99']:6.2f} ms  max {c['max']:6.2f} ms  ({c['n']} trials, "
          f"{result['command']['missed']} missed)")
    if cycle is not None:
        print(f"  env cycle (dt {cycle['dt_ms']:.0f} ms, {cycle['steps']} steps)  |period-dt| "
              f"p50 {cycle['error_p50_ms']:.2f}  p99 {cycle['error_p99_ms']:.2f}  max "
              f"{cycle['error_max_ms']:.2f} ms   overruns {cycle['overruns']}   drift "
              f"{cycle['drift_ms']:.2f} ms   obs age p50 {cycle['obs_age_p50_ms']:.1f}  p99 "
              f"{cycle['obs_age_p99_ms']:.1f} ms")


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
    p.add_argument("--state-timeout", type=float, default=0.1,
                   help="the communicator's state watchdog, s (FrankaROS2Config.state_timeout)")
    p.add_argument("--domain-id", type=int, default=42, help="ROS_DOMAIN_ID of this run")
    p.add_argument("--out", default="benchmark_ros2.json", help="JSON output path")
    args = p.parse_args(argv)

    enter_loopback_namespace()  # before any thread or child: they inherit it
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(args.domain_id))
    from communicators.franka.ros2.franka_ros2_communicator import FrankaROS2Communicator, FrankaROS2Config

    config = FrankaROS2Config(actuator_rate_hz=args.actuator_rate_hz, state_timeout=args.state_timeout)
    comm = FrankaROS2Communicator(config)
    with tempfile.TemporaryDirectory(prefix="rtrl_ros2_log_") as log_dir:
        os.environ["ROS_LOG_DIR"] = log_dir
        bridge = _start_bridge(comm.runtime, args.rate_hz)
        try:
            comm.start()
            _wait_for_state(comm)
            time.sleep(0.5)
            state = measure_state(comm, args.seconds)
            command = measure_command_latency(comm, args.trials)
            comm.close()
            cycle = measure_env_cycle("ros2", config, args.env_steps, args.dt) if args.env_steps else None
        finally:
            comm.close()
            bridge.terminate()
            bridge.wait(timeout=10)
            bridge.stdout.close()

    result = {"backend": "ros2", "bridge_rate_hz": args.rate_hz,
              "actuator_rate_hz": args.actuator_rate_hz, "state_timeout_s": args.state_timeout,
              "domain_id": args.domain_id,
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "state": state, "command": command, "env_cycle": cycle}
    _print(result)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"  wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
