"""Training runs of the SAC agent on the Franka visual reacher, as a library.

``python examples/franka_reacher.py`` (or the ``franka-reacher`` console script) calls
:func:`main`. Reading order: settings (the typed configuration the command line is derived from)
-> cli (parse, check, open the run) -> session (build, run, every ending) -> loop (the acting
loop) -> updaters (serial and asynchronous learning behind one interface) -> run_dir, signals,
console.
"""
from sac.training.cli import main, parse
from sac.training.settings import TrainConfig
from sac.training.updaters import AsyncUpdater, SerialUpdater, Updater

__all__ = ["main", "parse", "TrainConfig", "Updater", "SerialUpdater", "AsyncUpdater"]
