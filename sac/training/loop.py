"""The acting loop of a training run: step the env, store transitions, let the updater learn, log
each episode, checkpoint every ``--save_model_freq`` steps; and the evaluation loop.

Read top to bottom: :class:`RunState` (what a checkpoint carries to continue), :func:`train`,
:func:`evaluate`, then the per-episode logging and the run summary. The loop knows nothing of how
learning happens (an :class:`~sac.training.updaters.Updater` does) nor of how the run ends
(sac/training/session.py handles every ending and saves).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from sac.logger import Logger
from sac.training.console import Console
from sac.training.settings import TrainConfig
from sac.training.signals import StopSignals
from sac.training.updaters import Updater, transition_extras


@dataclass
class RunState:
    """Everything the loop needs to continue a run (saved in every checkpoint's trainer.pt)."""

    action_rng: np.random.Generator
    step: int = 0
    episode: int = 0
    last_save_step: int = 0
    returns: list[float] = field(default_factory=list)
    episode_end_steps: list[int] = field(default_factory=list)
    periods: list[float] = field(default_factory=list)
    ages: dict[str, list[float]] = field(default_factory=dict)
    """Sensor stream -> its age at every step, s."""
    staleness: list[int] = field(default_factory=list)
    """Updates between the learner and the weights that chose each action."""
    wall_time_s: float = 0.0
    """Wall-clock seconds of all the run's invocations together."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["action_rng"] = self.action_rng.bit_generator.state
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunState:
        d = dict(d)
        rng = np.random.default_rng()
        rng.bit_generator.state = d.pop("action_rng")
        known = {f.name for f in fields(cls)}
        return cls(action_rng=rng, **{k: v for k, v in d.items() if k in known})


@dataclass
class LoopOutcome:
    """Why the loop returned: ``"done"`` (all steps taken), ``"time_limit"`` or ``"stopped"`` (a signal)."""

    reason: str


def train(config: TrainConfig, env: Any, updater: Updater, logger: Logger, state: RunState,
          stop: StopSignals, console: Console, save: Callable[[], None]) -> LoopOutcome:
    """Runs env steps until ``init_step + env_step`` steps, the time limit or a stop signal.

    Args:
        config: the run's settings.
        env: the Gymnasium env (its episodes truncate by themselves).
        updater: how the agent learns.
        logger: the run's log (console line, CSV, TensorBoard).
        state: counters; updated in place, also when the env or the learner fails mid-step.
        stop: the run's stop signals, checked after every step.
        console: where progress goes.
        save: writes a periodic checkpoint (between episodes).

    Raises:
        EnvError: a device or the env's loop failed (the session stops the arm and saves).
        LearnerError: learning failed for good (the session saves the last good agent).
    """
    run, env_cfg = config.run, config.env
    total = run.init_step + run.env_step
    session_start = time.monotonic()
    wall_before = state.wall_time_s
    streams = list(env.freshness_budgets)
    console.start_progress(run.init_step, state.step, "initial random steps")
    obs, _ = env.reset(seed=run.seed + state.episode)
    action = np.zeros(env.action_space.shape, np.float32)
    ep_return, ep_steps, ep_start, last = 0.0, 0, time.monotonic(), None
    ep_first_period = len(state.periods)
    try:
        while state.step < total and not stop.requested:
            if run.time_limit and time.monotonic() - session_start > run.time_limit:
                return LoopOutcome("time_limit")
            if state.step < run.init_step:
                if ep_steps % env_cfg.random_action_repeat == 0:
                    action = state.action_rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            elif ep_steps % env_cfg.agent_action_repeat == 0:
                action = updater.agent.act(obs)
            acting = updater.acting_updates
            state.staleness.append(updater.num_updates - acting)
            next_obs, reward, terminated, truncated, info = env.step(action)
            now = time.monotonic()
            if last is not None:  # recorded per step, so a run cut short still reports its cycle
                state.periods.append(now - last)
            last = now
            for name in streams:
                state.ages.setdefault(name, []).append(info["timing"]["ages"][name])
            updater.add(obs, action, reward, next_obs, terminated, transition_extras(info["timing"], streams, acting))
            state.step += 1
            ep_return += reward
            ep_steps += 1
            obs = next_obs
            console.progress(state.step)
            updater.after_step(state.step)
            if terminated or truncated:
                state.episode += 1
                state.wall_time_s = wall_before + time.monotonic() - session_start
                _log_episode(logger, state, updater, ep_return, now - ep_start, state.periods[ep_first_period:],
                             env_cfg.dt * 1e3)
                if run.save_model and state.step - state.last_save_step >= run.save_model_freq:
                    save()
                if state.step >= total or stop.requested:
                    break
                obs, _ = env.reset()
                ep_return, ep_steps, ep_start, last = 0.0, 0, time.monotonic(), None
                ep_first_period = len(state.periods)
        return LoopOutcome("stopped" if stop.requested else "done")
    finally:  # also when the env or the learner fails: a save after that needs the time
        state.wall_time_s = wall_before + time.monotonic() - session_start
        console.end_progress()


def evaluate(config: TrainConfig, env: Any, agent: Any, logger: Logger, stop: StopSignals) -> list[float]:
    """Runs ``--eval_episodes`` episodes with the deterministic policy; no learning."""
    returns = []
    for episode in range(config.run.eval_episodes):
        if stop.requested:
            break
        obs, _ = env.reset(seed=config.run.seed + episode)
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


def _log_episode(logger: Logger, state: RunState, updater: Updater, ep_return: float, duration: float,
                 periods: list[float], dt_ms: float) -> None:
    step = state.step
    for key, value in updater.stats().items():
        logger.log(key, value, step)
    p = np.array(periods) * 1e3 if periods else np.zeros(1)
    staleness = state.staleness[-max(1, len(periods) + 1):]
    logger.log("timing/staleness_updates", float(np.mean(staleness)) if staleness else 0.0, step)
    for key, value in (("episode/number", state.episode), ("episode/duration_s", duration),
                       ("episode/return", ep_return), ("episode/wall_time_s", state.wall_time_s),
                       ("train/num_updates", updater.num_updates), ("timing/period_p50_ms", np.percentile(p, 50)),
                       ("timing/period_p99_ms", np.percentile(p, 99)), ("timing/period_max_ms", p.max()),
                       ("timing/overruns", int(np.sum(p > dt_ms + 1.0)))):
        logger.log(key, value, step)
    logger.dump(step)
    state.returns.append(float(ep_return))
    state.episode_end_steps.append(step)


def summary(config: TrainConfig, state: RunState, updater: Updater) -> dict:
    """Run figures for benchmarks: cycle timing, throughput, recent returns, the observation keys the
    agent consumed, and each sensor stream's age p50/p99."""
    observation_keys = sorted(updater.agent.observation_space.spaces)
    p = np.array(state.periods) * 1e3 if state.periods else np.zeros(1)
    wall = max(state.wall_time_s, 1e-9)
    dt_ms = config.env.dt * 1e3
    return {**updater.summary(), "dt_ms": dt_ms, "env_steps": state.step, "episodes": state.episode,
            "wall_time_s": state.wall_time_s, "num_updates": updater.num_updates,
            "updates_per_s": updater.num_updates / wall, "env_steps_per_s": state.step / wall,
            "period_p50_ms": float(np.percentile(p, 50)), "period_p99_ms": float(np.percentile(p, 99)),
            "period_max_ms": float(p.max()), "overruns": int(np.sum(p > dt_ms + 1.0)),
            "mean_return_last_20": float(np.mean(state.returns[-20:])) if state.returns else None,
            "observation_keys": observation_keys, "stream_age_ms": _percentiles_ms(state.ages),
            "staleness_updates": {"p50": float(np.percentile(state.staleness, 50)) if state.staleness else 0.0,
                                  "p99": float(np.percentile(state.staleness, 99)) if state.staleness else 0.0}}


def _percentiles_ms(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """name -> {"p50", "p99"} of its values (s), in ms; NaNs (no data yet) left out."""
    out = {}
    for name, seconds in values.items():
        finite = np.asarray(seconds, np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            out[name] = {"p50": float(np.percentile(finite, 50) * 1e3), "p99": float(np.percentile(finite, 99) * 1e3)}
    return out
