"""The training command line, derived from the settings dataclasses (sac/training/settings.py).

Every setting is a flag with the seed's name; ``--help`` shows its doc, default and unit. Parsing
and checking happen before anything is created: a bad flag or derived setting is one line on
stderr naming the flag as typed, its value and what it must be, and exit code 2. Then the run
directory is created (or, with ``--resume DIR``, reopened) and locked, and the session runs.

``--resume DIR`` continues a run with its recorded settings. Flags given with it that
:data:`~sac.training.settings.MAY_CHANGE` take the new value (recorded in args.json); flags that
are :data:`~sac.training.settings.FIXED` are refused if they differ from the run's.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import types
from typing import Any, Union, get_args, get_origin

from communicators.errors import ConfigError
from sac.training import build
from sac.training.console import Console
from sac.training.run_dir import RunDirectory, RunInUseError
from sac.training.settings import AGENT_FIELDS, FIXED, MAY_CHANGE, SettingError, TrainConfig, setting_fields

EXIT_USAGE = 2
PROG = "python examples/franka_reacher.py"
PRESET_FIELDS = ("image_width", "image_height", "image_history", *AGENT_FIELDS)


class UsageError(Exception):
    """A command line that cannot run; the message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(f"{message}; see --help")


def build_parser() -> argparse.ArgumentParser:
    """The parser; every flag defaults to "not given" (the settings hold the defaults)."""
    parser = _Parser(
        prog=PROG, argument_default=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train (or evaluate) SAC on the Franka visual reacher, serially or with an asynchronous "
                    "learner.",
        epilog="exit codes: 0 done, 1 failed (saved; the message gives the --resume command), 2 bad command "
               "line, 128+N stopped by signal N after saving (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)")
    groups = {}
    for group, f in setting_fields():
        if group not in groups:
            groups[group] = parser.add_argument_group(f"{group} settings")
        meta = f.metadata
        kind = _kind(f.type)
        help_text = _help(f, meta)
        if kind is bool:
            action = "store_true" if f.default is False else argparse.BooleanOptionalAction
            groups[group].add_argument(f"--{f.name}", action=action, help=help_text)
        elif kind is list:
            groups[group].add_argument(f"--{f.name}", action="append", metavar="SPEC", help=help_text)
        else:
            groups[group].add_argument(f"--{f.name}", metavar=f.name.upper(), help=help_text)
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint, with its "
                        f"settings; flags that may change on resume: {', '.join(_names(MAY_CHANGE))}")
    return parser


def parse(argv: list[str]) -> tuple[TrainConfig, str | None]:
    """The checked config of a command line, and the run directory to resume (None: a new run).

    Raises:
        UsageError: the one-line message.
    """
    given = vars(build_parser().parse_args(argv))
    resume = given.pop("resume", None)
    typed = {name: _convert(name, raw) for name, raw in given.items()}
    if resume is None:
        values, source = typed, None
    else:
        values, source = _merge_with_run(resume, typed), resume
    try:
        config = build.with_preset(TrainConfig.from_flat(values))
        build.check(config)
    except ConfigError as err:
        raise UsageError(_render(err, given, stored=source)) from None
    return config, resume


def main(argv: list[str] | None = None) -> int:
    """The training script: parse, check, create or reopen the run, run it. Returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    console = Console()
    try:
        config, resume = parse(argv)
        run_dir, resume_command = _open_run(config, resume)
    except UsageError as err:
        print(err, file=sys.stderr, flush=True)
        return EXIT_USAGE
    from sac.training.session import run_session  # torch and the env stack load only for a run that starts
    try:
        return run_session(config, run_dir, resuming=resume is not None, resume_command=resume_command,
                           console=console)
    finally:
        run_dir.release()


def _open_run(config: TrainConfig, resume: str | None) -> tuple[RunDirectory, str]:
    """Creates and locks a new run directory, or locks the one being resumed; writes args.json."""
    if resume is not None:
        run_dir = RunDirectory(resume)
        try:
            run_dir.lock()
        except RunInUseError as err:
            raise UsageError(str(err)) from None
    else:
        run_dir = RunDirectory(os.path.join(config.run.work_dir, "results", build.run_directory_name(config)))
        try:
            run_dir.create_and_lock()
        except RunInUseError as err:
            raise UsageError(str(err)) from None
        except FileExistsError:
            pid = run_dir.holder()
            if pid is not None:
                raise UsageError(f"{run_dir.path} is running (PID {pid}); wait for it to end, or stop it with "
                                 f"kill -TERM {pid} (it saves first)") from None
            raise UsageError(f"results directory {run_dir.path} already exists; continue it with --resume "
                             f"{run_dir.path}, or pick another --seed or --work_dir, or delete it") from None
    run_dir.write_args(config.flat())
    return run_dir, f"{PROG} --resume {shlex.quote(run_dir.path)}"


def _merge_with_run(resume: str, typed: dict[str, Any]) -> dict[str, Any]:
    run_dir = RunDirectory(resume)
    try:
        stored = run_dir.read_args()
    except FileNotFoundError:
        raise UsageError(f"--resume {resume}: no run there (no args.json); give a directory under "
                         "<work_dir>/results/") from None
    defaults = TrainConfig().flat()
    stored = {**defaults, **{k: v for k, v in stored.items() if k in defaults}}  # an older run lacks newer flags
    on_resume = {f.name: f.metadata["on_resume"] for _, f in setting_fields()}
    for name, value in typed.items():
        if on_resume[name] == FIXED and value != stored[name]:
            raise UsageError(f"--{name} {_shown(value)}: cannot change on --resume (the run has --{name} "
                             f"{_shown(stored[name])}); start a new run for another value")
    return {**stored, **typed}


def _render(err: ConfigError, given: dict[str, str], stored: str | None) -> str:
    flag = build.FLAG_OF.get(err.field, err.field)
    value = given.get(flag, _shown(err.value))
    if isinstance(value, list):  # a repeatable flag: the one entry that is wrong
        value = _shown(err.value)
    shown = "" if isinstance(err.value, bool) or err.value is None else f" {value}"
    hint = "" if err.example is None else f", e.g. --{flag} {_shown(err.example)}"
    where = "" if flag in given or stored is None else f" (the setting of the run in {stored})"
    return f"--{flag}{shown}{where}: {err.requirement}{hint}"


def _convert(name: str, raw: Any) -> Any:
    if isinstance(raw, (bool, list)) or raw is None:
        return raw
    kind = _kind(_field(name).type)
    try:
        return kind(raw)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(kind, "a value")
        raise UsageError(f"--{name} {raw}: must be {what}") from None


def _field(name: str) -> dataclasses.Field:
    return next(f for _, f in setting_fields() if f.name == name)


def _kind(annotation: Any) -> type:
    """The plain type of a field's annotation (``int | None`` -> int)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"Union": Union})  # noqa: S307 - our own annotations
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return get_origin(annotation) or annotation  # list[str] -> list


def _help(f: dataclasses.Field, meta: Any) -> str:
    parts = [meta["doc"]]
    if meta["choices"]:
        parts.append(f"one of {', '.join(map(str, meta['choices']))}")
    if meta["unit"]:
        parts.append(f"unit: {meta['unit']}")
    if f.name in PRESET_FIELDS:
        default = "the preset's"
    else:
        default = f.default if isinstance(f.default, (bool, tuple)) else {None: "none", "": "auto"}.get(f.default, f.default)
    parts.append(f"default: {default}")
    if meta["on_resume"] == MAY_CHANGE:
        parts.append("may change on --resume")
    return "; ".join(parts).replace("%", "%%")


def _names(on_resume: str) -> list[str]:
    return [f"--{f.name}" for _, f in setting_fields() if f.metadata["on_resume"] == on_resume]


def _shown(value: Any) -> str:
    return str(value)


__all__ = ["UsageError", "build_parser", "main", "parse", "SettingError"]
