"""The step loop of examples/franka_reacher.py: training (serial or async), evaluation, checkpoints."""
from __future__ import annotations

import argparse
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from tqdm import tqdm

from sac.checkpoint import save_checkpoint


class CtrlC:
    """Ctrl-C is the training loop's business: it stops the robot and saves before exiting.

    From construction until :meth:`arm`, SIGINT is ignored, so every process started meanwhile
    (env communicators, the learner) inherits "ignore" and a terminal's Ctrl-C, which reaches the
    whole process group, cannot kill them mid-run. After ``arm()`` the first Ctrl-C sets
    ``requested`` (the loop finishes its step and stops); a second one raises KeyboardInterrupt.
    :meth:`restore` puts the previous handler back.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def arm(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


@dataclass
class RunState:
    """Everything the loop needs to continue a run (saved in every checkpoint)."""

    action_rng: np.random.Generator
    step: int = 0
    episode: int = 0
    last_save_step: int = 0
    returns: list[float] = field(default_factory=list)
    episode_end_steps: list[int] = field(default_factory=list)
    periods: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["action_rng"] = self.action_rng.bit_generator.state
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunState:
        rng = np.random.default_rng()
        rng.bit_generator.state = d.pop("action_rng")
        known = {f.name for f in fields(cls)}
        return cls(action_rng=rng, **{k: v for k, v in d.items() if k in known})


def save(run_dir: str, agent, replay, learner, state: RunState) -> str:
    """Full checkpoint (the learner writes the agent in async mode: it holds the optimizers)."""
    def write_agent(path: str) -> None:
        if learner is not None:
            learner.save_agent(path)
        else:
            torch.save(agent.state_dict(), path)
    state.last_save_step = state.step
    return save_checkpoint(os.path.join(run_dir, "model"), state.step, write_agent, replay, state.to_dict())


def train(args: argparse.Namespace, run_dir: str, env, agent, replay, learner, logger, state: RunState,
          stop: CtrlC) -> None:
    """Runs env steps until ``init_step + env_step`` steps, the time limit or Ctrl-C."""
    total = args.init_step + args.env_step
    t_start = time.monotonic() - state.wall_time_s
    bar = tqdm(total=args.init_step, initial=state.step, desc="initial random steps",
               leave=False) if state.step < args.init_step else None
    obs, _ = env.reset(seed=args.seed + state.episode)
    stop.arm()  # every process is up now
    action = np.zeros(env.action_space.shape, np.float32)
    ep_return, ep_steps, ep_start, last = 0.0, 0, time.monotonic(), None
    ep_first_period = len(state.periods)  # this episode's periods are state.periods[ep_first_period:]
    try:
        while state.step < total and not stop.requested:
            if args.time_limit and time.monotonic() - t_start > args.time_limit:
                break
            if learner is not None:
                learner.raise_if_failed()
                learner.set_env_step(state.step)
                learner.pull_weights(agent.policy)  # newest weights, if any; never waits
            if state.step < args.init_step:
                if ep_steps % args.random_action_repeat == 0:
                    action = state.action_rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            elif ep_steps % args.agent_action_repeat == 0:
                action = agent.act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            now = time.monotonic()
            if last is not None:  # recorded per step, so a run cut short still reports its cycle
                state.periods.append(now - last)
            last = now
            replay.add(obs, action, reward, next_obs, terminated)
            state.step += 1
            ep_return += reward
            ep_steps += 1
            obs = next_obs
            if bar is not None:
                bar.update(1)
                if state.step >= args.init_step:
                    bar.close()
                    bar = None
            if learner is None and state.step > args.init_step:
                # Serial baseline: the update runs inside the action cycle.
                info = agent.update(replay.sample(agent.config.batch_size, agent.np_rng))
                info.pop("train/num_updates")  # a counter, logged once per episode, not averaged
                for key, value in info.items():
                    logger.log(key, value, state.step)
            if terminated or truncated:
                state.episode += 1
                if bar is not None:
                    bar.clear()  # the console line goes on a clean line; the bar redraws below it
                _log_episode(logger, state, learner, agent, ep_return, now - ep_start,
                             state.periods[ep_first_period:], time.monotonic() - t_start, args.dt * 1e3)
                if bar is not None:
                    bar.refresh()
                if args.save_model and state.step - state.last_save_step >= args.save_model_freq:
                    state.wall_time_s = time.monotonic() - t_start
                    save(run_dir, agent, replay, learner, state)
                obs, _ = env.reset()
                ep_return, ep_steps, ep_start, last = 0.0, 0, time.monotonic(), None
                ep_first_period = len(state.periods)
    finally:  # also when the env or the learner fails: a save after that needs the time
        state.wall_time_s = time.monotonic() - t_start
        if bar is not None:
            bar.close()


def _log_episode(logger, state: RunState, learner, agent, ep_return: float, duration: float,
                 periods: list[float], wall: float, dt_ms: float) -> None:
    step = state.step
    if learner is not None:
        for key, value in learner.stats().items():
            logger.log(key, value, step)
    num_updates = learner.num_updates if learner is not None else agent.num_updates
    p = np.array(periods) * 1e3 if periods else np.zeros(1)
    for key, value in (("episode/number", state.episode), ("episode/duration_s", duration),
                       ("episode/return", ep_return), ("episode/wall_time_s", wall),
                       ("train/num_updates", num_updates), ("timing/period_p50_ms", np.percentile(p, 50)),
                       ("timing/period_p99_ms", np.percentile(p, 99)), ("timing/period_max_ms", p.max()),
                       ("timing/overruns", int(np.sum(p > dt_ms + 1.0)))):
        logger.log(key, value, step)
    logger.dump(step)
    state.returns.append(float(ep_return))
    state.episode_end_steps.append(step)


def summary(args: argparse.Namespace, state: RunState, num_updates: int) -> dict:
    """Run figures for benchmarks: cycle timing, throughput, recent returns."""
    p = np.array(state.periods) * 1e3 if state.periods else np.zeros(1)
    wall = max(state.wall_time_s, 1e-9)
    return {"mode": "async" if args.async_mode else "serial", "dt_ms": args.dt * 1e3, "env_steps": state.step,
            "episodes": state.episode, "wall_time_s": state.wall_time_s, "num_updates": num_updates,
            "updates_per_s": num_updates / wall, "env_steps_per_s": state.step / wall,
            "period_p50_ms": float(np.percentile(p, 50)), "period_p99_ms": float(np.percentile(p, 99)),
            "period_max_ms": float(p.max()), "overruns": int(np.sum(p > args.dt * 1e3 + 1.0)),
            "mean_return_last_20": float(np.mean(state.returns[-20:])) if state.returns else None}


def evaluate(args: argparse.Namespace, env, agent, logger, stop: CtrlC) -> list[float]:
    """Runs ``--eval_episodes`` episodes with the deterministic policy; no learning."""
    returns = []
    for episode in range(args.eval_episodes):
        if stop.requested:
            break
        obs, _ = env.reset(seed=args.seed + episode)
        if episode == 0:
            stop.arm()  # once: re-arming would undo a first Ctrl-C's switch to KeyboardInterrupt
        start, ep_return, done = time.monotonic(), 0.0, False
        while not done and not stop.requested:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=True))
            ep_return += reward
            done = terminated or truncated
        returns.append(ep_return)
        for key, value in (("episode/number", episode + 1), ("episode/duration_s", time.monotonic() - start),
                           ("episode/return", ep_return)):
            logger.log(key, value, episode + 1, mode="eval")
        logger.dump(episode + 1, mode="eval")
    return returns
