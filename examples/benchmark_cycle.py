"""Action-cycle benchmark: how well RTRLBaseEnv keeps dt, with devices polling and a learner competing.

It runs an env of ``--comms`` communicators (7-float state in, 7-float command out, at
``--comm-rate`` Hz each), steps it ``--steps`` times at ``--dt``, optionally spending
``--agent-ms`` of CPU per step (the agent's compute) while ``--burners`` background processes burn
a core each (a stand-in for the learner). It runs each pacing mode asked for (``deadline``, the
project's; ``relative``, the seed's and SenseAct's) and prints p50/p99/max |period - dt|,
overruns, drift, observation age and the CPU the pacing used. It also measures SharedBuffer.
Results go to JSON, and a histogram of the period error to PNG.

Example:
    python -m examples.benchmark_cycle --dt 0.04 --steps 250 --burners 1 --out results/bench_cycle
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gymnasium import spaces

from communicators import Communicator, SharedBuffer
from rtrl_env import RTRLBaseEnv
from rtrl_env.task import Task

STATE_DIM = 7


class PacketDevice(Communicator):
    """A device stand-in with a robot's data shape: publishes 7 floats, takes 7-float commands."""

    def __init__(self, rate_hz: float) -> None:
        super().__init__({"shape": (STATE_DIM,), "dtype": np.float64, "buffer_len": 4},
                         {"shape": (STATE_DIM,), "dtype": np.float64, "buffer_len": 2},
                         sensor_rate_hz=rate_hz, actuator_rate_hz=rate_hz, actuator_timeout=0.1)

    def open_device(self) -> None:
        self.command = np.zeros(STATE_DIM)

    def read_sensor(self) -> None:
        self.sensor_buffer.write(self.command)

    def send_command(self) -> None:
        self.command = self.actuator_buffer.read_update()[0][0]

    def on_command_timeout(self) -> None:
        self.command = np.zeros(STATE_DIM)


class PacketTask(Task):
    """Flat observation: the newest packet of every device; the action goes to every device."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.observation_space = spaces.Box(-np.inf, np.inf, (STATE_DIM * len(names),), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (STATE_DIM,), np.float32)

    def sense(self, windows: dict) -> np.ndarray:
        return np.concatenate([windows[name].data[-1] for name in self.names])

    def actuate(self, action: np.ndarray) -> dict[str, np.ndarray]:
        return {name: action for name in self.names}


def benchmark_env(comms: int, comm_rate: float, dt: float, run_mode: str, pacing: str,
                  realtime_priority: int | None) -> RTRLBaseEnv:
    """``comms`` packet devices at ``comm_rate`` Hz under a PacketTask."""
    devices = {f"device{i}": PacketDevice(comm_rate) for i in range(comms)}
    return RTRLBaseEnv(PacketTask(list(devices)), devices, dt=dt, run_mode=run_mode, pacing=pacing,
                       realtime_priority=realtime_priority)


def _burn(stop: multiprocessing.synchronize.Event) -> None:
    x = 0.0
    while not stop.is_set():
        for _ in range(10_000):
            x = x * 1.0000001 + 1.0


def _spend(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@dataclass
class CycleSettings:
    dt: float
    steps: int
    comms: int
    comm_rate: float
    agent_ms: float
    burners: int
    run_mode: str
    realtime_priority: int | None
    env: str = "packets"


def _make_env(settings: CycleSettings, pacing: str) -> RTRLBaseEnv:
    if settings.env == "packets":
        return benchmark_env(settings.comms, settings.comm_rate, settings.dt, settings.run_mode, pacing,
                             settings.realtime_priority)
    import gymnasium

    import rtrl_env  # noqa: F401  (registers the reacher)

    return gymnasium.make(settings.env, dt=settings.dt, run_mode=settings.run_mode, pacing=pacing,
                          realtime_priority=settings.realtime_priority).unwrapped


def run_cycle(settings: CycleSettings, pacing: str) -> dict:
    """Runs one pacing mode; returns its report and the raw period errors (ms)."""
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True) for _ in range(settings.burners)]
    for proc in burners:
        proc.start()
    env = _make_env(settings, pacing)
    try:
        env.reset()
        action = np.zeros(env.action_space.shape, np.float32)
        cpu_in_step, wall0, reset_time = 0.0, time.monotonic(), 0.0
        for _ in range(settings.steps):
            _spend(settings.agent_ms / 1000.0)
            cpu0 = time.thread_time()
            _, _, terminated, truncated, _ = env.step(action)
            cpu_in_step += time.thread_time() - cpu0
            if terminated or truncated:  # episodes of the reacher: resets are not cycles
                t0 = time.monotonic()
                env.reset()
                reset_time += time.monotonic() - t0
        wall = time.monotonic() - wall0 - reset_time
        report = env.timing_report().as_dict()
        period = env.timing_records()["period"]
    finally:
        env.close()
        stop.set()
        for proc in burners:
            proc.join(2.0)
    report["pacing"] = pacing
    report["pacing_cpu_percent"] = 100.0 * cpu_in_step / wall
    errors_ms = (period[np.isfinite(period)] - settings.dt) * 1000.0
    return {"report": report, "period_error_ms": errors_ms.tolist()}


def _write_rate_in_child(buf: SharedBuffer, n: int, out: SharedBuffer) -> None:
    packet = np.zeros(STATE_DIM)
    start = time.perf_counter()
    for _ in range(n):
        buf.write(packet)
    out.write(np.array([n / (time.perf_counter() - start)]))


def measure_shared_buffer(repeats: int = 20_000) -> dict:
    """Frame write+read latency (uint8 and float64 slots) and the 7-float write rate from a child."""
    results = {}
    for dtype in (np.uint8, np.float64):
        buf = SharedBuffer(shape=(120, 160, 3), dtype=dtype, buffer_len=4)
        frame = np.full((120, 160, 3), 7, dtype)
        times = np.empty(repeats)
        for i in range(repeats):
            t0 = time.perf_counter()
            buf.write(frame)
            buf.read()
            times[i] = time.perf_counter() - t0
        buf.close()
        results[f"frame_write_read_{np.dtype(dtype).name}_p50_us"] = float(np.median(times) * 1e6)
    for method in ("fork", "spawn"):
        buf = SharedBuffer(shape=(STATE_DIM,), dtype=np.float64, buffer_len=2)
        out = SharedBuffer(shape=(1,), dtype=np.float64, buffer_len=1)
        proc = multiprocessing.get_context(method).Process(target=_write_rate_in_child, args=(buf, 200_000, out))
        proc.start()
        proc.join()
        results[f"packet_write_rate_{method}_khz"] = float(out.latest()[0][0] / 1000.0)
        buf.close()
        out.close()
    return results


def _print_table(rows: list[dict], settings: CycleSettings) -> None:
    devices = (f"{settings.comms} communicators at {settings.comm_rate:.0f} Hz" if settings.env == "packets"
               else "sim arm, camera and target processes")
    print(f"\naction cycle on {settings.env}: dt {settings.dt * 1000:.0f} ms, {settings.steps} steps, {devices}, agent {settings.agent_ms:.1f} ms/step, {settings.burners} CPU burner(s), "
          f"run mode {settings.run_mode}, SCHED_FIFO {settings.realtime_priority}")
    header = f"{'pacing':<10}{'p50 |err|':>11}{'p99 |err|':>11}{'max |err|':>11}{'overruns':>10}{'drift':>10}{'obs age p50':>13}{'pacing CPU':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['pacing']:<10}{r['error_p50_ms']:>8.3f} ms{r['error_p99_ms']:>8.3f} ms{r['error_max_ms']:>8.3f} ms"
              f"{r['overruns']:>10d}{r['drift_ms']:>+7.3f} ms{r['obs_age_p50_ms']:>10.2f} ms{r['pacing_cpu_percent']:>10.1f} %")


def _save_histogram(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ax.hist(run["period_error_ms"], bins=80, alpha=0.6, label=run["report"]["pacing"])
    ax.set_xlabel("period - dt (ms)")
    ax.set_ylabel("steps")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("action-cycle period error")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dt", type=float, default=0.04, help="action cycle (s)")
    parser.add_argument("--steps", type=int, default=250, help="env steps per pacing mode")
    parser.add_argument("--env", default="packets",
                        help="'packets' (7-float devices, see --comms) or a registered id, e.g. FrankaVisualReacher2-v0 "
                             "(sim arm, camera and target processes)")
    parser.add_argument("--comms", type=int, default=2, help="number of communicators")
    parser.add_argument("--comm-rate", type=float, default=500.0, help="communicator loop rate (Hz)")
    parser.add_argument("--agent-ms", type=float, default=0.0, help="agent compute per step (ms of CPU)")
    parser.add_argument("--burners", type=int, default=1, help="background processes burning a core each")
    parser.add_argument("--run-mode", choices=("singlethread", "multiprocess"), default="singlethread")
    parser.add_argument("--pacing", choices=("deadline", "relative", "both"), default="both")
    parser.add_argument("--realtime-priority", type=int, default=None,
                        help="SCHED_FIFO priority of the stepping thread (e.g. 50); default: normal scheduler")
    parser.add_argument("--skip-buffer", action="store_true", help="skip the SharedBuffer measurements")
    parser.add_argument("--out", type=Path, default=Path("results/bench_cycle"), help="output prefix (.json, .png)")
    args = parser.parse_args(argv)
    if args.dt <= 0 or args.steps < 2 or args.comms < 1:
        parser.error("need dt > 0, steps >= 2 and comms >= 1")
    settings = CycleSettings(args.dt, args.steps, args.comms, args.comm_rate, args.agent_ms, args.burners,
                             args.run_mode, args.realtime_priority, args.env)
    modes = ("deadline", "relative") if args.pacing == "both" else (args.pacing,)
    runs = [run_cycle(settings, mode) for mode in modes]
    _print_table([run["report"] for run in runs], settings)
    result = {"settings": vars(settings), "runs": [run["report"] for run in runs], "cpu_count": os.cpu_count()}
    if not args.skip_buffer:
        result["shared_buffer"] = measure_shared_buffer()
        print("\nSharedBuffer: " + ", ".join(f"{k} {v:.2f}" for k, v in result["shared_buffer"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2))
    _save_histogram(runs, Path(f"{args.out}.png"))
    print(f"\nwrote {args.out}.json and {args.out}.png")
    return result


if __name__ == "__main__":
    main()
