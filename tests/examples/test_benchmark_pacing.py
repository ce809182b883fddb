"""The spin-margin A/B benchmark runs end to end on a tiny budget and writes what it promises."""

import json

import pytest

from examples import benchmark_pacing


@pytest.mark.timeout(120)
def test_benchmark_pools_both_variants_alternately_and_writes_json(tmp_path, capsys):
    out = tmp_path / "ab"
    result = benchmark_pacing.main(["--reps", "2", "--steps", "6", "--dt", "0.02", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "fixed 0.3 ms" in printed and "learned" in printed and "within 0.05 ms" in printed
    saved = json.loads((tmp_path / "ab.json").read_text())
    assert set(saved["results"]) == {"fixed 0.3 ms", "learned"} and len(saved["load_1min_after_each_pair"]) == 2
    for r in saved["results"].values():
        assert r["periods"] == 2 * 5  # per run, the first period after reset is not a cycle
        assert 0 <= r["share_within_0p05_ms"] <= 1 and r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert result["results"] == saved["results"]


def test_bad_arguments_are_refused_with_a_message(capsys):
    with pytest.raises(SystemExit):
        benchmark_pacing.main(["--reps", "0"])
    assert "need reps >= 1" in capsys.readouterr().err
