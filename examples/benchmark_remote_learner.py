"""Benchmark the remote learner: a training run on the simulated reacher whose learner is a Ray
actor on a second Ray node, with the learner's process SIGKILLed once mid-run.

Sets up its own loopback-only network namespace first (nothing is sent off this machine), starts a
two-node Ray cluster on loopback (sac/remote/local_cluster.py: the head at 127.0.0.2 stands for the
robot's computer, 127.0.0.3 for the learning machine), runs ``examples/franka_reacher.py
--async_mode --learner ray`` (cpu preset, dt 40 ms) for ``--duration`` seconds of acting, kills
the learner's process with SIGKILL once, a third into the run and after its first updates (Ray
restarts it from its checkpoint), and writes:

* ``cycle_p99_ms`` (and p50, max, overruns): the action cycle's periods, every step included;
* ``staleness_p50_ms`` / ``staleness_p99_ms``: from the learner publishing a version of the
  weights to the actor loading it (one clock: both nodes are on this machine);
* ``updates_per_s``, ``env_steps``, ``num_updates``;
* ``transitions_sent`` (given to the outbox by the actor), ``transitions_stored`` (acknowledged by
  the learner: in its journal), ``transitions_lost`` (dropped anywhere);
* ``learner_restart_s``: from the SIGKILL to the first weights of the restarted learner reaching
  the actor;
* ``run_process_cores`` / ``learner_process_cores``: the cores the training run's process and the
  learner actor's process were allowed, read from the kernel.

Two machines do not share cores, so by default (``--split_cores``) the robot side (the training
run with its devices and bridge, and the head node) runs on the first core and the learner node on
the others; ``--no-split_cores`` lets everything share every core. ``--realtime_priority N`` runs
the action cycle under SCHED_FIFO, as on a robot PC with a real-time kernel.

Targets (issue "The learner on another machine"): cycle p99 <= dt + 1 ms, staleness p50 <= 250 ms,
the learner back within 10 s, no transition lost. Not a test: figures depend on the machine's load.

    python -m examples.benchmark_remote_learner --duration 60 --out docs/results/benchmark_remote_learner.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script too

from examples.loopback_namespace import enter_loopback_namespace  # noqa: E402
SCRIPT = os.path.join(ROOT, "examples", "franka_reacher.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of acting (the run's --time_limit)")
    parser.add_argument("--init_step", type=int, default=250, help="random-action steps before learning")
    parser.add_argument("--split_cores", action=argparse.BooleanOptionalAction, default=True,
                        help="the robot side (the training run and the head node) on the first core, the learner node "
                             "on the others, as two machines would be (needs 2 or more cores)")
    parser.add_argument("--realtime_priority", type=int, default=None,
                        help="the run's --realtime_priority (SCHED_FIFO for its action cycle; needs the privilege)")
    parser.add_argument("--out", default="benchmark_remote_learner.json", help="JSON file to write")
    args = parser.parse_args(argv)
    if args.duration < 15:
        parser.error(f"--duration={args.duration:g}: give at least 15 s (the learner is killed a third "
                     "into the run, after learning has started)")
    return args


def run(args: argparse.Namespace, work_dir: str) -> dict:
    """Starts the cluster and the training run, kills the learner once mid-run; returns the figures."""
    from sac.remote.local_cluster import HEAD_IP, LocalCluster, hygiene_env, pinned_to

    robot_cores, learner_cores = _cores(args.split_cores)
    with LocalCluster(head_cores=robot_cores, learner_cores=learner_cores) as cluster:
        env = dict(os.environ, **hygiene_env(cluster.home), PYTHONPATH=ROOT, MUJOCO_GL="egl", PYTHONUNBUFFERED="1")
        command = [sys.executable, SCRIPT, "--async_mode", "--learner", "ray", "--ray_address", cluster.address,
                   "--ray_node_ip", HEAD_IP, "--learner_restarts", "3", "--preset", "cpu", "--init_step",
                   str(args.init_step), "--env_step", "1000000", "--time_limit", str(args.duration),
                   "--work_dir", work_dir, "--no-save_tb"]
        if args.realtime_priority is not None:
            command += ["--realtime_priority", str(args.realtime_priority)]
        log_path = os.path.join(work_dir, "run.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=pinned_to(robot_cores))
            run_process_cores = sorted(os.sched_getaffinity(proc.pid))
            killed_at, learner_process_cores = _kill_learner_once(cluster, proc, log_path, args.duration)
            code = proc.wait(args.duration + 300)
        with open(log_path) as f:
            output = f.read()
        with open(f"{os.path.splitext(args.out)[0]}.log", "w") as f:  # the run's own output, beside the figures
            f.write(output)
        if code != 0:
            raise SystemExit(f"the training run exited with code {code}:\n{output[-4000:]}")
        (name,) = os.listdir(os.path.join(work_dir, "results"))
        with open(os.path.join(work_dir, "results", name, "summary.json")) as f:
            summary = json.load(f)
    restarts = summary["learner_events"]
    back = restarts[0].get("weights_again_wall") if restarts else None
    return {"duration_s": args.duration, "dt_ms": summary["dt_ms"], "preset": "cpu",
            "cycle_p50_ms": summary["period_p50_ms"], "cycle_p99_ms": summary["period_p99_ms"],
            "cycle_max_ms": summary["period_max_ms"], "overruns": summary["overruns"],
            "staleness_p50_ms": summary["staleness_p50_ms"], "staleness_p99_ms": summary["staleness_p99_ms"],
            "weights_received": summary["weights_received"], "updates_per_s": summary["updates_per_s"],
            "num_updates": summary["num_updates"], "env_steps": summary["env_steps"],
            "transitions_sent": summary["transitions_sent"], "transitions_stored": summary["transitions_stored"],
            "transitions_lost": summary["transitions_lost"], "learner_restarts": summary["learner_restarts"],
            "learner_restart_s": None if back is None else back - killed_at,
            "watchdog_warnings": summary["watchdog_warnings"], "run_process_cores": run_process_cores,
            "learner_process_cores": learner_process_cores,
            "realtime_priority": args.realtime_priority, "learner_events": restarts, "machine": platform.node(),
            "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}


def _cores(split: bool) -> tuple[set[int] | None, set[int] | None]:
    """The cores of the robot side and of the learner node (None: any)."""
    if not split:
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit(f"--split_cores needs 2 or more cores, this process may use {len(cores)}; "
                         "run with --no-split_cores")
    return {cores[0]}, set(cores[1:])


def _kill_learner_once(cluster, proc: subprocess.Popen, log_path: str, duration: float) -> tuple[float, list[int]]:
    """SIGKILLs the learner's process a third of the run after the run began, once it has made
    updates (so it restarts from a learned checkpoint); returns the wall time of the kill and the
    cores the learner's process was allowed."""
    deadline = time.monotonic() + 600
    while "learner '" not in _read(log_path):  # the learner is attached: the run's time limit starts now
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the training run did not start:\n{_read(log_path)[-4000:]}")
        time.sleep(0.2)
    third = time.monotonic() + duration / 3  # two thirds of the run are left for the restart
    while time.monotonic() < third or not _has_learned(_read(log_path)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the training run ended before the learner could be killed:\n{_read(log_path)[-4000:]}")
        time.sleep(0.2)
    pid = cluster.learner.pid_of("SACLearner")
    if pid is None:
        raise SystemExit("the learner's process was not found on the learner node")
    cores = sorted(os.sched_getaffinity(pid))
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    return killed_at, cores


def _has_learned(output: str) -> bool:
    return any(float(n) > 0 for n in re.findall(r"^\| train \|.* NUM: (\d+\.\d+)$", output, re.MULTILINE))


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def main(argv: list[str] | None = None) -> dict:
    enter_loopback_namespace()  # first: the Ray head must not reach any other address
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_remote_") as work_dir:
        figures = run(args, work_dir)
    for key, value in figures.items():
        print(f"{key:>20}: {value:.2f}" if isinstance(value, float) else f"{key:>20}: {value}")
    with open(args.out, "w") as f:
        json.dump(figures, f, indent=2)
    print(f"wrote {args.out}")
    return figures


if __name__ == "__main__":
    main()
