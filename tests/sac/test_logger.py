"""The seed's console line, CSV rows and TensorBoard events."""
from __future__ import annotations

import csv
import os

import pytest

from sac.logger import Logger, format_line

pytestmark = pytest.mark.timeout(30)

SEED_LINE = "| train | E: 1 | S: 1000 | D: 0.8 s | R: 0.0000 | BR: 0.0000 | ALOSS: 0.0000 | CLOSS: 0.0000 | NUM: 0.0000"


def test_console_line_matches_the_seed_format_exactly(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    line = format_line("train", {"episode/number": 1, "episode/step": 1000, "episode/duration_s": 0.8})
    assert line == SEED_LINE


def test_dump_averages_since_the_last_dump_and_writes_csv_and_tensorboard(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    logger = Logger(str(tmp_path), use_tb=True)
    for loss in (1.0, 3.0):
        logger.log("train/critic_loss", loss, 5)
    logger.log("episode/number", 1, 5)
    logger.dump(5)
    logger.log("train/critic_loss", 7.0, 9)
    logger.dump(9)
    logger.close()
    out = capsys.readouterr().out.splitlines()
    assert "CLOSS: 2.0000" in out[0] and "CLOSS: 7.0000" in out[1]
    with open(tmp_path / "train.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["train/critic_loss"]) for r in rows] == [2.0, 7.0]
    assert [int(float(r["episode/step"])) for r in rows] == [5, 9]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))


def test_an_existing_csv_is_continued_only_when_asked(tmp_path):
    (tmp_path / "train.csv").write_text("episode/number\n1\n")
    logger = Logger(str(tmp_path), use_tb=False)
    with pytest.raises(FileExistsError, match="append=True"):
        logger.dump(1, echo=False)
    logger = Logger(str(tmp_path), use_tb=False, append=True)
    logger.log("episode/number", 2, 2)
    logger.dump(2, echo=False)
    logger.close()
    assert (tmp_path / "train.csv").read_text().splitlines() == ["episode/number", "1", "2.0"]
