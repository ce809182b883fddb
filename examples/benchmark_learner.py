"""Learner throughput: the shared-memory pipeline against a queue-of-minibatches pipeline.

Both pipelines run the same agent, batch and image shapes, the same weight publishing and the
same 40 ms acting loop in the main process (synthetic stacked frames, policy inference, storing
the transition, pulling weights). Only the data path differs:

- ``shared``: the actor writes the shared replay buffer; the learner process samples it directly
  (sac.async_learner.AsyncLearner).
- ``queue``: the anchors' design. The actor sends each transition through a multiprocessing
  queue to a replay process, which samples minibatches and sends them, pickled, through a second
  queue to the update process.

The learner runs flat out (no update cap), under each scheduling policy of ``--schedulers``
(``communicators.realtime.run_in_background``: ``other`` at ``--nice``, ``batch`` at ``--nice``,
``idle``) with each thread count of ``--learner_threads``; the acting loop is paced by the env's
Pacer (deadline grid, learned spin margin). Each run records its share of the serial two-thread
ceiling measured in the same invocation and the load average (the machine may be shared). Prints
a table and writes JSON; ``runs[0]`` is the first combination. Not a test: figures depend on the
machine and its load.

    python examples/benchmark_learner.py --duration 60 --out benchmark_learner.json
    python examples/benchmark_learner.py --duration 60 --configs seed --pipelines shared \
        --schedulers other,batch,idle --learner_threads 1,2 --serial_seconds 20 --out FILE
    python examples/benchmark_learner.py --profile --configs seed     # where an update's time goes
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import os
import platform
import queue as queue_lib
import signal
import time

import numpy as np
import torch
from gymnasium import spaces

from communicators.realtime import BACKGROUND_SCHEDULERS, Pacer, enable_realtime, run_in_background
from sac.agent import SACAgent
from sac.async_learner import AsyncLearner, LearnerConfig
from sac.config import get_preset
from sac.replay_buffer import SharedReplayBuffer
from communicators.shared_memory import SharedArrays
from sac.weights import WeightPublisher

PROPRIO_DIM, ACTION_DIM, DT = 21, 7, 0.040
# name -> (preset, (channels, height, width), encoder overrides); "seed" uses the anchors' reference
# shapes; "seed-bf16" is the same network with its convolutions under bfloat16 autocast.
CONFIGS = {"seed": ("seed", (9, 84, 84), {}), "seed-bf16": ("seed", (9, 84, 84), {"bf16": True}),
           "cpu": ("cpu", (9, 48, 64), {})}


def observation_space(image_shape: tuple[int, int, int]) -> spaces.Dict:
    """The reacher's observation: stacked frames and proprioception."""
    return spaces.Dict({"image": spaces.Box(0, 255, image_shape, np.uint8),
                        "proprioception": spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32)})


def agent_config(config: str):
    preset_name, _, encoder = CONFIGS[config]
    agent = get_preset(preset_name).agent
    return dataclasses.replace(agent, encoder=dataclasses.replace(agent.encoder, **encoder))


class SyntheticStream:
    """Frame-stacked observations with one new random frame per step, like the env's."""

    def __init__(self, image_shape: tuple[int, int, int], seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.shape = image_shape
        self.obs = self._next(np.zeros(image_shape, np.uint8))

    def _next(self, image: np.ndarray) -> dict[str, np.ndarray]:
        frame = self.rng.integers(0, 256, (3, *self.shape[1:]), dtype=np.uint8)
        return {"image": np.concatenate([image[3:], frame]),
                "proprioception": self.rng.standard_normal(PROPRIO_DIM).astype(np.float32)}

    def step(self, action: np.ndarray) -> tuple:
        obs, self.obs = self.obs, self._next(self.obs["image"])
        return obs, action, float(self.rng.random()), self.obs, False


# ---------------------------------------------------------------- queue pipeline
def _replay_process(transitions, batches, shape, capacity, batch_size, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    replay = SharedReplayBuffer(observation_space(shape), ACTION_DIM, capacity)  # private to this process
    rng = np.random.default_rng(1)
    try:
        while not stop.is_set():
            try:
                while True:
                    replay.add(*transitions.get_nowait())
            except queue_lib.Empty:
                pass
            if len(replay) < batch_size:
                time.sleep(0.005)
                continue
            try:
                batches.put(replay.sample(batch_size, rng), timeout=0.1)  # pickled by the queue
            except queue_lib.Full:
                pass
    finally:
        replay.close()


def _queue_learner(batches, spec, state, weights, counters, stop, threads, scheduler, nice) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_in_background(scheduler, nice)
    torch.set_num_threads(threads)
    agent = SACAgent(*spec)
    agent.load_state_dict(state)
    weights.publish(agent.policy_state())
    updates = counters["n"]
    while not stop.is_set():
        try:
            batch = batches.get(timeout=0.1)
        except queue_lib.Empty:
            continue
        agent.update(batch)
        weights.publish(agent.policy_state())
        updates[0] = agent.num_updates


class QueuePipeline:
    """The anchors' three-process design, with this project's agent and weight publishing."""

    def __init__(self, agent: SACAgent, capacity: int, threads: int, scheduler: str, nice: int):
        ctx = multiprocessing.get_context("spawn")
        self.transitions, self.batches = ctx.Queue(), ctx.Queue(maxsize=2)
        self.stop_event = ctx.Event()
        self.weights = WeightPublisher(agent.policy_state())
        self.counters = SharedArrays({"n": ((1,), np.int64)}, tag="bench")
        spec = (agent.observation_space, agent.action_dim, agent.config)
        self.procs = [
            ctx.Process(target=_replay_process, daemon=True,
                        args=(self.transitions, self.batches, agent.layout.images["image"], capacity,
                              agent.config.batch_size, self.stop_event)),
            ctx.Process(target=_queue_learner, daemon=True,
                        args=(self.batches, spec, agent.state_dict(), self.weights, self.counters,
                              self.stop_event, threads, scheduler, nice))]
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        for p in self.procs:
            p.start()

    def add(self, *transition) -> None:
        self.transitions.put(transition)

    @property
    def num_updates(self) -> int:
        return int(self.counters["n"][0])

    def pull_weights(self, policy) -> int | None:
        return self.weights.pull(policy)

    def raise_if_failed(self) -> None:
        dead = [p.name for p in self.procs if not p.is_alive()]
        if dead:
            raise RuntimeError(f"queue pipeline processes died: {dead}")

    def stop(self) -> None:
        self.stop_event.set()
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (self.transitions, self.batches):
            q.cancel_join_thread()
            q.close()
        self.weights.close()
        self.counters.close()


class NoLearner:
    """The ``none`` pipeline: the acting loop alone (it still stores every transition), as the
    baseline of the acting loop's timing under the machine's current load."""

    num_updates = 0

    def pull_weights(self, policy) -> None:
        return None

    def raise_if_failed(self) -> None:
        pass

    def stop(self) -> None:
        pass


# -------------------------------------------------------------------- one run
def run(config: str, pipeline: str, duration: float, threads: int, scheduler: str, nice: int, prefill: int,
        actor_priority: int | None = None) -> dict:
    shape, config_ = CONFIGS[config][1], agent_config(config)
    torch.set_num_threads(1)  # the acting process's budget
    agent = SACAgent(observation_space(shape), ACTION_DIM, config_, seed=0)
    stream = SyntheticStream(shape)
    replay = None
    if pipeline in ("shared", "none"):
        replay = SharedReplayBuffer(observation_space(shape), ACTION_DIM, capacity=10_000)
        for _ in range(prefill):
            replay.add(*stream.step(np.zeros(ACTION_DIM, np.float32)))
    if pipeline == "none":
        learner, add = NoLearner(), replay.add
    elif pipeline == "shared":
        learner = AsyncLearner(agent, replay, LearnerConfig(max_update_freq=1e9, update_after=0,
                                                            num_threads=threads, scheduler=scheduler,
                                                            nice=nice)).start()
        learner.set_env_step(1 << 40)
        learner.wait_ready(120)
        add = replay.add
    else:
        learner = QueuePipeline(agent, 10_000, threads, scheduler, nice)
        for _ in range(prefill):
            learner.add(*stream.step(np.zeros(ACTION_DIM, np.float32)))
        while learner.weights.version == 0:
            learner.raise_if_failed()
            time.sleep(0.05)
        add = learner.add
    try:
        # After the learner started: a child would inherit SCHED_FIFO.
        realtime = enable_realtime(actor_priority)
        while pipeline != "none" and learner.num_updates < 3:  # warm-up: process start, first batches
            learner.raise_if_failed()
            time.sleep(0.05)
        periods, work, pulls = [], [], 0
        load0 = os.getloadavg()
        u0, t0 = learner.num_updates, time.monotonic()
        pacer = Pacer(DT, spin_s=None)  # the env's: deadline grid, learned spin margin
        pacer.start(t0)
        last = t0
        while time.monotonic() - t0 < duration:
            start = time.monotonic()
            learner.raise_if_failed()
            pulls += learner.pull_weights(agent.policy) is not None
            action = agent.act(stream.obs)
            add(*stream.step(action))
            work.append(time.monotonic() - start)
            pacer.wait()
            now = time.monotonic()
            periods.append(now - last)
            last = now
        elapsed = time.monotonic() - t0
        updates = learner.num_updates - u0
        load1 = os.getloadavg()
    finally:
        if actor_priority is not None:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        learner.stop()
        if replay is not None:
            replay.close()
    p = np.array(periods[1:]) * 1e3
    return {"config": config, "pipeline": pipeline, "image_shape": list(shape),
            "batch_size": config_.batch_size, "learner_threads": threads, "learner_scheduler": scheduler,
            "learner_nice": 0 if scheduler == "idle" else nice, "actor_realtime": realtime,
            "duration_s": elapsed,
            "updates_per_s": updates / elapsed, "env_steps_per_s": len(periods) / elapsed,
            "weight_pulls_per_s": pulls / elapsed, "period_p50_ms": float(np.percentile(p, 50)),
            "period_p99_ms": float(np.percentile(p, 99)), "period_max_ms": float(p.max()),
            "overruns": int(np.sum(p > DT * 1e3 + 1.0)),
            "actor_work_p99_ms": float(np.percentile(np.array(work) * 1e3, 99)),
            "loadavg_before": load0, "loadavg_after": load1}


@contextlib.contextmanager
def _agent_with_data(config: str, threads: int):
    """An agent for ``config`` (``threads`` torch threads) and a replay buffer of 500 synthetic transitions."""
    shape = CONFIGS[config][1]
    torch.set_num_threads(threads)
    agent = SACAgent(observation_space(shape), ACTION_DIM, agent_config(config))
    replay = SharedReplayBuffer(observation_space(shape), ACTION_DIM, capacity=1000)
    stream = SyntheticStream(shape)
    try:
        for _ in range(500):
            replay.add(*stream.step(np.zeros(ACTION_DIM, np.float32)))
        yield agent, replay
    finally:
        replay.close()


def serial_ceiling(config: str, threads: int, seconds: float) -> float:
    """Updates/s of the update alone, in this process (no actor, no pipeline)."""
    with _agent_with_data(config, threads) as (agent, replay):
        agent.update(replay.sample(agent.config.batch_size, agent.np_rng))
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            agent.update(replay.sample(agent.config.batch_size, agent.np_rng))
            n += 1
        return n / (time.monotonic() - t0)


def profile_update(config: str, threads: int, updates: int = 5) -> str:
    """torch profiler table (self CPU time per op) of ``updates`` updates on one fixed batch."""
    with _agent_with_data(config, threads) as (agent, replay):
        batch = replay.sample(agent.config.batch_size, agent.np_rng)
        agent.update(batch)  # warm-up
        with torch.profiler.profile() as prof:
            for _ in range(updates):
                agent.update(batch)
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per pipeline run")
    parser.add_argument("--configs", default="seed,seed-bf16,cpu", help="comma list of: " + ",".join(CONFIGS))
    parser.add_argument("--pipelines", default="shared,queue",
                        help="comma list of: shared, queue, none (the acting loop alone: its timing baseline)")
    parser.add_argument("--learner_threads", default=str(LearnerConfig.num_threads),
                        help="comma list of torch thread counts of the learner")
    parser.add_argument("--schedulers", default=LearnerConfig.scheduler,
                        help="comma list of the learner's scheduling policies: " + ",".join(BACKGROUND_SCHEDULERS))
    parser.add_argument("--nice", type=int, default=LearnerConfig.nice,
                        help="nice increment of the learner's threads (other and batch)")
    parser.add_argument("--actor_priority", type=int, default=None,
                        help="run the acting loop under SCHED_FIFO at this priority (1-99; needs root)")
    parser.add_argument("--serial_seconds", type=float, default=15.0, help="0 skips the serial ceiling")
    parser.add_argument("--serial_after", action="store_true",
                        help="measure the serial ceiling again after the runs (serial_updates_per_s_after), to "
                             "see whether the machine's load changed meanwhile")
    parser.add_argument("--out", default="benchmark_learner.json", help="JSON output path")
    parser.add_argument("--profile", action="store_true",
                        help="only print where an update's time goes (torch profiler), per config")
    args = parser.parse_args()
    try:
        thread_counts = [int(t) for t in args.learner_threads.split(",")]
    except ValueError:
        parser.error(f"--learner_threads {args.learner_threads}: must be a comma list of whole numbers, e.g. 1,2")
    if min(thread_counts) < 1:
        parser.error(f"--learner_threads {args.learner_threads}: every count must be >= 1, e.g. 1,2")
    schedulers = args.schedulers.split(",")
    unknown = [name for name in schedulers if name not in BACKGROUND_SCHEDULERS]
    if unknown:
        parser.error(f"--schedulers {args.schedulers}: {','.join(unknown)} is none of {','.join(BACKGROUND_SCHEDULERS)}")
    if args.profile:
        for config in args.configs.split(","):
            for threads in thread_counts:
                print(f"{config}, {threads} thread(s):\n{profile_update(config, threads)}")
        return
    results, serial = [], {}
    for config in args.configs.split(","):
        if args.serial_seconds > 0:
            for threads in (1, 2):
                serial[f"{config}/{threads}"] = serial_ceiling(config, threads, args.serial_seconds)
        for pipeline in args.pipelines.split(","):
            combos = [("-", 0)] if pipeline == "none" else [(a, b) for a in schedulers for b in thread_counts]
            for scheduler, threads in combos:
                r = run(config, pipeline, args.duration, threads, scheduler, args.nice, prefill=1000,
                        actor_priority=args.actor_priority)
                ceiling = serial.get(f"{config}/2")
                r["of_serial_two_thread_ceiling"] = r["updates_per_s"] / ceiling if ceiling else None
                results.append(r)
                print(f"{config:5s} {pipeline:6s} {scheduler:5s} {threads} thr  updates/s "
                      f"{r['updates_per_s']:6.2f}  env steps/s {r['env_steps_per_s']:5.1f}  period p50/p99/max "
                      f"{r['period_p50_ms']:.2f}/{r['period_p99_ms']:.2f}/{r['period_max_ms']:.1f} ms  load "
                      f"{r['loadavg_after'][0]:.2f}", flush=True)
    header = ("| config | shape | batch | pipeline | scheduler | threads | updates/s | x serial 2-thread | "
              "env steps/s | period p50 / p99 / max (ms) | overruns | load avg (1 min, after) |")
    print("\n" + header + "\n|" + "---|" * 12)
    for r in results:
        share = "" if r["of_serial_two_thread_ceiling"] is None else f"{r['of_serial_two_thread_ceiling']:.2f}"
        scheduler = r["learner_scheduler"] + ("" if r["learner_scheduler"] == "idle" else f" +{r['learner_nice']}")
        print(f"| {r['config']} | {'x'.join(map(str, r['image_shape']))} | {r['batch_size']} | {r['pipeline']} | "
              f"{scheduler} | {r['learner_threads']} | {r['updates_per_s']:.2f} | {share} | "
              f"{r['env_steps_per_s']:.1f} | {r['period_p50_ms']:.2f} / {r['period_p99_ms']:.2f} / "
              f"{r['period_max_ms']:.1f} | {r['overruns']} | {r['loadavg_after'][0]:.2f} |")
    serial_after = {}
    if args.serial_after and args.serial_seconds > 0:
        for config in args.configs.split(","):
            for threads in (1, 2):
                serial_after[f"{config}/{threads}"] = serial_ceiling(config, threads, args.serial_seconds)
    for key, value in serial.items():
        after = f" (after the runs: {serial_after[key]:.2f})" if key in serial_after else ""
        print(f"serial ceiling {key} thread(s): {value:.2f} updates/s{after}")
    with open(args.out, "w") as f:
        json.dump({"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                               "torch": torch.__version__}, "dt_s": DT, "args": vars(args),
                   "runs": results, "serial_updates_per_s": serial, "serial_updates_per_s_after": serial_after,
                   "loadavg_end": os.getloadavg()}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
