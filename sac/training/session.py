"""One training run from start to every way it ends, written once.

:func:`run_session` builds the env, the agent and the updater, restores a resumed run, runs the
loop and then handles how it ended. Every ending stops the arm first (the env closes, which sends
the task's stop commands), then keeps the data:

==========================  ==============================================================  =====
ending                      what is saved, what is printed                                  exit
==========================  ==============================================================  =====
all steps / time limit      final checkpoint, summary.json, plots                            0
Ctrl-C, SIGTERM, SIGHUP     the same, then "stopped by SIG...; continue with: ... --resume"  128+N
device or env failure       checkpoint at the failing step; the cause; the resume command    1
learner failed for good     checkpoint with the learner's last good agent state; the cause   1
learner cannot start        nothing; the cause and the resume command                        1
a checkpoint cannot be      nothing new; the previous checkpoint is intact; the cause        1
written (disk full)
==========================  ==============================================================  =====

Saves run under :meth:`StopSignals.saving`, so a second Ctrl-C cannot abort them. Processes and
shared memory are released in ``finally`` whatever happens.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from rtrl_env.errors import EnvError
from sac.checkpoint import latest_checkpoint, load_trainer_state, save_checkpoint
from sac.errors import CheckpointError, LearnerError
from sac.logger import Logger
from sac.plots import plot_cycle_histogram, plot_learning_curve
from sac.training.build import agent_file, make_agent, make_env, make_updater, run_directory_name
from sac.training.console import Console
from sac.training.loop import RunState, evaluate, summary, train
from sac.training.run_dir import RunDirectory
from sac.training.settings import TrainConfig
from sac.training.signals import StopSignals
from sac.training.updaters import Updater

EXIT_OK, EXIT_FAILED = 0, 1


class _Run:
    """The parts of a live run, for the endings to use."""

    def __init__(self, config: TrainConfig, run_dir: RunDirectory, console: Console, resume_command: str) -> None:
        self.config, self.run_dir, self.console = config, run_dir, console
        self.resume_command = resume_command
        self.env: Any = None
        self.updater: Updater | None = None
        self.state = RunState(action_rng=np.random.default_rng(config.run.seed))

    def save(self, stop: StopSignals) -> str | None:
        """A full checkpoint now (none with --no-save_model); returns its directory."""
        if not self.config.run.save_model:
            return None
        with stop.saving():
            self.state.last_save_step = self.state.step
            return save_checkpoint(self.run_dir.model_dir, self.state.step, self.updater.write_checkpoint,
                                   self.state.to_dict())

    def close_env(self) -> None:
        """Stops the arm and every device process; a failing close is said, not raised."""
        if self.env is None:
            return
        try:
            self.env.close()
        except EnvError as err:  # the failed process may fail its close too; the save matters more
            self.console.error(f"closing the environment: {err}")


def run_session(config: TrainConfig, run_dir: RunDirectory, resuming: bool, resume_command: str,
                console: Console | None = None) -> int:
    """Runs (or evaluates) one training run in ``run_dir``, whose lock this process holds.

    Args:
        config: the checked settings (preset values filled in).
        run_dir: the run's directory (created, locked, args.json written).
        resuming: continue from the run's latest checkpoint.
        resume_command: the command that continues this run, for messages.
        console: where output goes.

    Returns:
        The exit code (see the module docstring).
    """
    console = console or Console()
    np.random.seed(config.run.seed)
    torch.manual_seed(config.run.seed)
    run = _Run(config, run_dir, console, resume_command)
    logger = Logger(run_dir.path, use_tb=config.run.save_tb, append=resuming, echo=console.line)
    with StopSignals() as stop:
        try:
            run.env = make_env(config)
            agent = make_agent(config, run.env)
            if config.run.eval:
                return _evaluate(run, agent, logger, stop)
            run.updater = make_updater(config, agent, run.env)
            _restore(run, agent, resuming)
            console.line(run.updater.storage_line())
            try:
                run.updater.start()
            except LearnerError as err:  # before the first step: the devices have not started
                console.error(f"{err}\nthe learner did not start; nothing was run. Continue with: "
                              f"{resume_command}")
                return EXIT_FAILED
            return _train(run, logger, stop)
        finally:
            run.close_env()
            if run.updater is not None:
                run.updater.close()
            logger.close()


def _evaluate(run: _Run, agent: Any, logger: Logger, stop: StopSignals) -> int:
    agent.load_state_dict(torch.load(agent_file(run.config.run.load_model), weights_only=False))
    try:
        evaluate(run.config, run.env, agent, logger, stop)
    except EnvError as err:
        run.console.error(f"the environment failed during evaluation: {err}")
        return EXIT_FAILED
    return stop.exit_code if stop.requested else EXIT_OK


def _restore(run: _Run, agent: Any, resuming: bool) -> None:
    checkpoint = latest_checkpoint(run.run_dir.model_dir) if resuming else None
    if checkpoint is not None:
        run.updater.restore(checkpoint)
        run.state = RunState.from_dict(load_trainer_state(checkpoint))
        run.console.line(f"resumed {checkpoint}: step {run.state.step}, episode {run.state.episode}")
    elif resuming:
        run.console.line(f"resumed {run.run_dir.path}: it has no checkpoint yet, so it starts again from step 0")
    elif run.config.run.load_model:
        agent.load_state_dict(torch.load(agent_file(run.config.run.load_model), weights_only=False))


def _train(run: _Run, logger: Logger, stop: StopSignals) -> int:
    try:
        outcome = train(run.config, run.env, run.updater, logger, run.state, stop, run.console,
                        save=lambda: run.save(stop))
    except (EnvError, LearnerError, CheckpointError) as err:
        with stop.saving():  # from here on, a second Ctrl-C cannot cut the stop short
            return _after_failure(run, stop, err)
    with stop.saving():
        return _after_loop(run, stop, outcome)


def _after_failure(run: _Run, stop: StopSignals, err: Exception) -> int:
    state, console = run.state, run.console
    if isinstance(err, EnvError):
        console.error(f"the environment failed at step {state.step}: {err}")
        return _save_after_failure(run, stop, "once the device works again")
    if isinstance(err, LearnerError):
        console.error(str(err))
        cause = str(err).strip().splitlines()[-1]
        console.error(f"the SAC learner failed for good at step {state.step} ({cause}); the arm is stopped")
        return _save_after_failure(run, stop, "after fixing the cause")
    run.close_env()  # a CheckpointError: a periodic save failed
    console.error(f"{err}; continue with: {run.resume_command}")
    return EXIT_FAILED


def _after_loop(run: _Run, stop: StopSignals, outcome: Any) -> int:
    state, console = run.state, run.console
    run.close_env()  # the robot stops before a save that may take a while
    try:
        path = run.save(stop)
    except CheckpointError as err:
        console.error(f"{err}; continue with: {run.resume_command}")
        return EXIT_FAILED
    _write_summary(run)
    if path is not None:
        console.line(f"saved {path} (step {state.step}, episode {state.episode})")
    if stop.requested:
        console.error(f"stopped by {stop.name} at step {state.step}; continue with: {run.resume_command}")
        return stop.exit_code
    if outcome.reason == "time_limit":
        console.line(f"time limit of {run.config.run.time_limit:g} s reached at step {state.step}; continue with: "
                     f"{run.resume_command}")
    return EXIT_OK


def _save_after_failure(run: _Run, stop: StopSignals, when: str) -> int:
    run.close_env()
    try:
        path = run.save(stop)
    except CheckpointError as err:
        run.console.error(f"{err}; continue with: {run.resume_command}")
        return EXIT_FAILED
    if path is not None:
        run.console.error(f"saved {path} (step {run.state.step}, episode {run.state.episode}); continue with "
                          f"--resume {run.run_dir.path} {when}: {run.resume_command}")
    return EXIT_FAILED


def _write_summary(run: _Run) -> None:
    config, state, name = run.config, run.state, run_directory_name(run.config)
    with open(os.path.join(run.run_dir.path, "summary.json"), "w") as f:
        json.dump(summary(config, state, run.updater), f, indent=2)
    plot_learning_curve(os.path.join(run.run_dir.path, "learning_curve.png"), state.episode_end_steps,
                        state.returns, name)
    plot_cycle_histogram(os.path.join(run.run_dir.path, "cycle_histogram.png"), np.array(state.periods),
                         config.env.dt, name)
