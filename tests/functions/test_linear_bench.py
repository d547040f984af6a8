"""The linear benchmark suite computes what it reports (tiny shapes; values, never timings)."""

from __future__ import annotations

import pytest

from softgrad.bench import linear
from softgrad.bench._suites import SUITES


def test_report_ratios_are_against_materialised_torch():
    rows = [
        {"impl": "softgrad", "times_s": [3.0, 1.0, 2.0], "extra_peak_bytes": 300 * 2**20,
         "other_cores": [0.1, 0.4], "load_before": 1.5, "load_after": 1.75},
        {"impl": "torch", "times_s": [4.0], "extra_peak_bytes": 3000 * 2**20,
         "other_cores": [0.0], "load_before": 1.75, "load_after": 2.0},
        {"impl": "cce", "error": "failed (exit 1): ModuleNotFoundError"},
    ]  # fmt: skip
    lines = linear.report_lines("a", (8, 4, 16), rows)
    assert lines[0].startswith("## case a: N=8 D=4 K=16 float32")
    fields = lines[2].split()
    assert fields[0] == "softgrad"
    assert float(fields[1]) == pytest.approx(2.0)  # the median time
    assert float(fields[2]) == pytest.approx(0.5)  # x torch: 2.0 / 4.0
    assert float(fields[3]) == pytest.approx(300)  # MiB
    assert float(fields[4]) == pytest.approx(0.1)  # x torch: 300 / 3000
    assert float(fields[5]) == pytest.approx(0.4)  # the most contended rep
    assert lines[4] == "cce                 failed (exit 1): ModuleNotFoundError"


def test_quick_run_measures_each_implementation_in_a_child():
    pytest.importorskip("numba")
    printed: list[str] = []
    impls = ("softgrad", "softgrad-recompute")
    result = linear.run(cases=("a",), impls=impls, quick=True, warm_rows=16, out=printed.append)
    rows = result["cases"]["a"]["rows"]
    assert [r["impl"] for r in rows] == list(impls)
    for r in rows:
        assert "error" not in r, r.get("error")
        assert len(r["times_s"]) == 1
        assert len(r["warmup_s"]) == 1
        assert r["times_s"][0] > 0
        assert r["extra_peak_bytes"] >= 0
    assert printed[0] == linear.report_lines("a", linear.QUICK["a"], rows)[0]
    # no torch baseline in this run: no ratios
    assert printed[3].split()[:3] == ["softgrad-recompute", f"{rows[1]['times_s'][0]:.2f}", "-"]


def test_registered_as_the_linear_suite():
    assert SUITES["linear"].module == "softgrad.bench.linear"
    with pytest.raises(SystemExit):  # argparse: an unknown implementation is refused
        linear.main(["--quick", "--impl", "nonsense"])
