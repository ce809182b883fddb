"""Training log: the seed's console line, a CSV file and TensorBoard, from one set of calls.

Console format (the seed's, unchanged; "train" in yellow, "eval" in green)::

    | train | E: 1 | S: 1000 | D: 0.8 s | R: 0.0000 | BR: 0.0000 | ALOSS: 0.0000 | CLOSS: 0.0000 | NUM: 0.0000

E episodes, S env steps, D episode duration, R episode return, BR mean batch reward, ALOSS and
CLOSS mean actor and critic losses since the previous line, NUM gradient updates so far.
"""
from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Callable

from termcolor import colored

# Console field -> (log key, format). Keys are namespaced as in the CSV and TensorBoard.
CONSOLE_FIELDS = (("E", "episode/number", "{:d}"), ("S", "episode/step", "{:d}"),
                  ("D", "episode/duration_s", "{:.1f} s"), ("R", "episode/return", "{:.4f}"),
                  ("BR", "train/batch_reward", "{:.4f}"), ("ALOSS", "train/actor_loss", "{:.4f}"),
                  ("CLOSS", "train/critic_loss", "{:.4f}"), ("NUM", "train/num_updates", "{:.4f}"))

# Every CSV column (fixed, so rows written before the first update line up with later ones).
CSV_FIELDS = tuple(key for _, key, _ in CONSOLE_FIELDS) + (
    "episode/wall_time_s", "train/alpha", "train/entropy", "train/q1", "train/alpha_loss",
    "timing/period_p50_ms", "timing/period_p99_ms", "timing/period_max_ms", "timing/overruns",
    "timing/updates_per_s", "timing/staleness_updates")


def format_line(mode: str, values: dict[str, float]) -> str:
    """The seed's console line; absent values print as 0."""
    pieces = []
    for short, key, fmt in CONSOLE_FIELDS:
        value = values.get(key, 0)
        pieces.append(f"{short}: " + fmt.format(int(value) if fmt == "{:d}" else float(value)))
    return f"| {colored(mode, 'yellow' if mode == 'train' else 'green')} | " + " | ".join(pieces)


class Logger:
    """Averages values between dumps; writes ``<mode>.csv`` rows, TensorBoard scalars, the console.

    Args:
        log_dir: results directory; CSV files go here, TensorBoard events under ``tb/``.
        use_tb: also write TensorBoard events.
        append: continue existing CSV files (resume) instead of refusing to overwrite them.
        echo: prints a console line (the run's Console.line; print by default).
    """

    def __init__(self, log_dir: str, use_tb: bool = True, append: bool = False,
                 echo: Callable[[str], None] | None = None):
        self.log_dir, self.append = log_dir, append
        self._echo = echo or (lambda line: print(line, flush=True))
        self._sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._files: dict[str, tuple] = {}
        self._tb = None
        if use_tb:
            from torch.utils.tensorboard import SummaryWriter  # imported only when asked for
            self._tb = SummaryWriter(os.path.join(log_dir, "tb"))

    def log(self, key: str, value: float, step: int, mode: str = "train") -> None:
        """Adds a value to the running mean of ``key`` (and writes it to TensorBoard)."""
        self._sums[mode][key] += float(value)
        self._counts[mode][key] += 1
        if self._tb is not None:
            self._tb.add_scalar(key, float(value), step)

    def dump(self, step: int, mode: str = "train", echo: bool = True) -> dict[str, float]:
        """Writes the means since the last dump as one CSV row (and console line). Returns them."""
        values = {k: s / self._counts[mode][k] for k, s in self._sums[mode].items()}
        values["episode/step"] = step
        self._sums[mode].clear()
        self._counts[mode].clear()
        self._write_csv(mode, values)
        if echo:
            self._echo(format_line(mode, values))
        return values

    def _write_csv(self, mode: str, values: dict[str, float]) -> None:
        if mode not in self._files:
            path = os.path.join(self.log_dir, f"{mode}.csv")
            exists = os.path.exists(path) and os.path.getsize(path) > 0
            if exists and not self.append:
                raise FileExistsError(f"{path} exists; pass append=True to continue it")
            fields = list(CSV_FIELDS)
            if exists:
                with open(path, newline="") as f:
                    fields = next(csv.reader(f), fields)
            f = open(path, "a", newline="")
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if not exists:
                writer.writeheader()
            self._files[mode] = (f, writer)
        f, writer = self._files[mode]
        writer.writerow(values)
        f.flush()

    def close(self) -> None:
        """Flushes and closes the files."""
        for f, _ in self._files.values():
            f.close()
        self._files.clear()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
