"""Spin-margin A/B: the fixed 0.3 ms margin against the learned one, alternated in short runs.

On a machine other work shares, load comes and goes within minutes, so two long runs one after
the other compare two loads more than two pacers. This runs the benchmark_cycle env (two 500 Hz
packet devices, singlethread, one core burned) in ``--reps`` pairs of ``--steps`` steps, the order
of each pair alternating, pools every period of each variant and prints p50/p90/p99/max of
|period - dt|, the share of periods within 0.05 ms of dt, drift and the CPU the stepping thread
used. Results go to JSON.

Example:
    python -m examples.benchmark_pacing --reps 8 --steps 300 --out docs/results/pacing_ab
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script too

from examples.benchmark_cycle import PacketDevice, PacketTask, _burn  # noqa: E402
from rtrl_env import RTRLBaseEnv  # noqa: E402

VARIANTS = {"fixed 0.3 ms": 0.0003, "learned": None}
_PR_SET_TIMERSLACK, _DEFAULT_SLACK_NS = 29, 50_000


def _timer_slack(ns: int) -> None:
    # A learning pacer sets its thread's slack to 1 ns once; the fixed margin ran with Linux's default.
    ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, ns, 0, 0, 0)


def run(spin_s: float | None, dt: float, steps: int, realtime_priority: int | None) -> tuple[list, float, float]:
    """One short run; returns its |period - dt| (ms), the stepping thread's CPU share and the drift (ms)."""
    devices = {f"device{i}": PacketDevice(500.0) for i in range(2)}
    env = RTRLBaseEnv(PacketTask(list(devices)), devices, dt=dt, run_mode="singlethread", spin_s=spin_s,
                      realtime_priority=realtime_priority)
    try:
        env.reset()
        _timer_slack(1 if spin_s is None else _DEFAULT_SLACK_NS)
        action = np.zeros(env.action_space.shape, np.float32)
        cpu0, wall0 = time.thread_time(), time.monotonic()
        for _ in range(steps):
            env.step(action)
        cpu = (time.thread_time() - cpu0) / (time.monotonic() - wall0)
        period = env.timing_records()["period"]
        drift = env.timing_report().drift_ms
    finally:
        env.close()
    return list(np.abs(period[np.isfinite(period)] - dt) * 1e3), cpu, drift


def summary(errors: list, cpus: list, drifts: list) -> dict:
    e = np.asarray(errors)
    return {"periods": int(e.size), "p50_ms": float(np.median(e)), "p90_ms": float(np.percentile(e, 90)),
            "p99_ms": float(np.percentile(e, 99)), "max_ms": float(e.max()),
            "share_within_0p05_ms": float(np.mean(e <= 0.05)), "cpu_percent": float(100 * np.mean(cpus)),
            "max_abs_drift_ms": float(np.max(np.abs(drifts)))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=8, help="pairs of runs")
    parser.add_argument("--steps", type=int, default=300, help="steps per run")
    parser.add_argument("--dt", type=float, default=0.04, help="action cycle (s)")
    parser.add_argument("--realtime-priority", type=int, default=None, help="SCHED_FIFO priority, e.g. 50")
    parser.add_argument("--out", type=Path, default=Path("results/pacing_ab"), help="output prefix (.json)")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.steps < 2 or args.dt <= 0:
        parser.error("need reps >= 1, steps >= 2 and dt > 0")
    stop = multiprocessing.Event()
    burner = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
    burner.start()
    pooled = {name: ([], [], []) for name in VARIANTS}
    loads = []
    try:
        for rep in range(args.reps):
            order = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                errors, cpu, drift = run(VARIANTS[name], args.dt, args.steps, args.realtime_priority)
                pooled[name][0].extend(errors)
                pooled[name][1].append(cpu)
                pooled[name][2].append(drift)
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
    finally:
        stop.set()
        burner.join(2.0)
    results = {name: summary(*values) for name, values in pooled.items()}
    for name, r in results.items():
        print(f"{name:<14} p50 {r['p50_ms']:.3f}  p90 {r['p90_ms']:.3f}  p99 {r['p99_ms']:.3f}  max {r['max_ms']:.3f} ms"
              f"  within 0.05 ms {100 * r['share_within_0p05_ms']:.1f} %  drift <= {r['max_abs_drift_ms']:.3f} ms"
              f"  CPU {r['cpu_percent']:.2f} %")
    print(f"1-minute load after each pair: {loads}")
    out = {"settings": vars(args) | {"out": str(args.out)}, "load_1min_after_each_pair": loads, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}.json")
    return out


if __name__ == "__main__":
    main()
