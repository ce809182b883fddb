"""The action-cycle benchmark runs end to end on a tiny budget and writes what it promises."""

import json

import pytest

from examples import benchmark_cycle


@pytest.mark.timeout(120)
def test_benchmark_prints_a_table_for_both_pacings_and_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "bench"
    result = benchmark_cycle.main(["--dt", "0.02", "--steps", "15", "--comms", "1", "--burners", "1",
                                   "--out", str(out)])
    printed = capsys.readouterr().out
    assert "deadline" in printed and "relative" in printed and "p99 |err|" in printed
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert [run["pacing"] for run in saved["runs"]] == ["deadline", "relative"]
    for run in saved["runs"]:
        assert run["steps"] == 14  # the first period after reset is not a cycle
        assert 15.0 < run["period_p50_ms"] < 25.0
    assert saved["shared_buffer"]["packet_write_rate_spawn_khz"] > 0
    assert (tmp_path / "bench.png").stat().st_size > 1000
    assert result["runs"] == saved["runs"]


def test_bad_arguments_are_refused_with_a_message(capsys):
    with pytest.raises(SystemExit):
        benchmark_cycle.main(["--dt", "-1"])
    assert "need dt > 0" in capsys.readouterr().err
