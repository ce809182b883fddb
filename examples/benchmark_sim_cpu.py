"""CPU used by each process of the full sim env while it steps with random actions.

Builds ``gymnasium.make(--env)`` (the sim backend: arm physics, camera renderer, target, the
polling loop, and this process stepping the env), resets it, then steps it with random actions
for ``--seconds`` of wall time (resets included when an episode ends, as in training). Each
process's CPU is read from ``/proc/<pid>/stat`` (user + system time of all its threads) at the
start and the end of the window: CPU seconds per wall second, 1.0 being one core busy. Also
reported per thread, the load average before and after (the machine may be shared), and the
frame and state rates the env saw, so a cut in CPU can be checked not to have cut the data.

Prints a table and writes JSON. Not a test: the figures depend on the machine and its load.

    python examples/benchmark_sim_cpu.py --seconds 30 --out benchmark_sim_cpu.json
    python examples/benchmark_sim_cpu.py --env FrankaVisualReacher-v0 --seconds 30
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium
import numpy as np

import rtrl_env  # noqa: F401  (registers the env ids)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(path: str) -> float:
    """User + system CPU seconds of the process or thread whose /proc directory is ``path``."""
    with open(os.path.join(path, "stat")) as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def thread_cpu(pid: int) -> dict[int, float]:
    """Thread id -> CPU seconds, for every thread of ``pid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = cpu_seconds(f"/proc/{pid}/task/{tid}")
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile
    return out


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                pass
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, pp in parent.items() if pp == current]
        found += children
        frontier += children
    return found


def labelled_processes(env) -> dict[str, int]:
    """Label -> pid: the env's communicators by their name in the env, the polling loop, this process."""
    base = env.unwrapped
    labels = {"env (this process)": os.getpid()}
    names = {id(comm): name for name, comm in base._comms.items()}
    for proc in base.processes:
        labels[names.get(id(proc), "polling loop")] = proc.pid
    return labels


def measure(env_id: str, seconds: float, seed: int) -> dict:
    """Steps ``env_id`` with random actions for ``seconds``; CPU per process and thread."""
    env = gymnasium.make(env_id)
    try:
        env.action_space.seed(seed)
        env.reset(seed=seed)
        labels = labelled_processes(env)
        known = set(labels.values())
        others = [p for p in descendants(os.getpid()) if p not in known]
        base = env.unwrapped
        frames0 = base._comms["camera"].sensor_buffer.num_writes
        states0 = base._comms["robot"].sensor_buffer.num_writes
        load0 = os.getloadavg()
        cpu0 = {label: cpu_seconds(f"/proc/{pid}") for label, pid in labels.items()}
        threads0 = {label: thread_cpu(pid) for label, pid in labels.items()}
        other0 = sum(cpu_seconds(f"/proc/{p}") for p in others)
        t0 = time.monotonic()
        steps = resets = 0
        while time.monotonic() - t0 < seconds:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                env.reset()
                resets += 1
        elapsed = time.monotonic() - t0
        cpu1 = {label: cpu_seconds(f"/proc/{pid}") for label, pid in labels.items()}
        threads1 = {label: thread_cpu(pid) for label, pid in labels.items()}
        other1 = sum(cpu_seconds(f"/proc/{p}") for p in others)
        frames = base._comms["camera"].sensor_buffer.num_writes - frames0
        states = base._comms["robot"].sensor_buffer.num_writes - states0
        load1 = os.getloadavg()
    finally:
        env.close()
    per_process = {label: (cpu1[label] - cpu0[label]) / elapsed for label in labels}
    per_process["others (forkserver, resource tracker)"] = (other1 - other0) / elapsed
    per_thread = {label: sorted(((tid, (cpu - threads0[label].get(tid, 0.0)) / elapsed)
                                 for tid, cpu in threads1[label].items()), key=lambda t: -t[1])
                  for label in labels}
    return {"env": env_id, "seconds": elapsed, "steps": steps, "resets": resets,
            "steps_per_s": steps / elapsed, "camera_frames_per_s": frames / elapsed,
            "arm_states_per_s": states / elapsed, "cpu_per_s": per_process,
            "cpu_per_s_total": sum(per_process.values()),
            "cpu_per_s_threads": {label: [{"tid": tid, "cpu_per_s": c} for tid, c in rows if c > 0.001]
                                  for label, rows in per_thread.items()},
            "loadavg_before": load0, "loadavg_after": load1}


def print_table(result: dict) -> None:
    print(f"\n{result['env']}: {result['seconds']:.1f} s, {result['steps']} steps "
          f"({result['steps_per_s']:.1f}/s, {result['resets']} resets), camera {result['camera_frames_per_s']:.1f} "
          f"frames/s, arm {result['arm_states_per_s']:.0f} states/s")
    print("| process | CPU s per s |\n|---|---|")
    for label, value in result["cpu_per_s"].items():
        print(f"| {label} | {value:.3f} |")
    print(f"| total | {result['cpu_per_s_total']:.3f} |")
    for label, rows in result["cpu_per_s_threads"].items():
        print(f"  {label} threads: " + ", ".join(f"{r['tid']}: {r['cpu_per_s']:.3f}" for r in rows))
    print(f"load average before {result['loadavg_before']}, after {result['loadavg_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="FrankaVisualReacher2-v0", help="comma list of env ids")
    parser.add_argument("--seconds", type=float, default=30.0, help="wall seconds of stepping per env")
    parser.add_argument("--seed", type=int, default=0, help="seeds the actions and the resets")
    parser.add_argument("--out", default="benchmark_sim_cpu.json", help="JSON output path")
    args = parser.parse_args()
    if not args.seconds > 1.0:
        parser.error(f"--seconds {args.seconds}: give more than 1 s")
    results = []
    for env_id in args.env.split(","):
        results.append(measure(env_id, args.seconds, args.seed))
        print_table(results[-1])
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpus": os.cpu_count(), "processor": platform.processor()}, "args": vars(args),
                   "runs": results}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
