"""The built-in suites compute what they report (tiny inputs; values, never timings)."""

from __future__ import annotations

import pytest

from softgrad.bench import classifier


def test_classifier_report_ratios_are_against_the_first_model() -> None:
    result = {
        "data": "toy",
        "reps": 2,
        "load_1min_before_after": [0.5, 0.6],
        "fits": [
            {"model": "sklearn", "median_s": 2.0, "n_iter": 10, "loss_evals": 12,
             "passes_over_X": 24.0, "test_accuracy": 0.9, "other_cores_busy": 0.0},
            {"model": "softgrad newton-cg", "median_s": 0.5, "n_iter": 3, "loss_evals": 4,
             "passes_over_X": 6.0, "test_accuracy": 0.9, "other_cores_busy": 0.1},
        ],
    }  # fmt: skip
    lines = classifier.report_lines(result)
    assert "toy  (2 reps, alternating; 1-min load 0.5 -> 0.6)" in lines[1]
    fields = lines[-1].split()
    assert fields[:3] == ["softgrad", "newton-cg", "0.500"]
    assert float(fields[3]) == pytest.approx(4.0)  # x faster: 2.0 / 0.5
    assert float(fields[7]) == pytest.approx(4.0)  # passes ratio: 24 / 6


def test_thresholds_suite_times_each_family_below_the_threshold() -> None:
    pytest.importorskip("numba")
    from softgrad.bench import thresholds

    printed: list[str] = []
    result = thresholds.run(sizes=(8, 64), out=printed.append)
    assert list(result) == ["forward", "vjp", "cross_entropy"]
    for rows in result.values():
        assert [r["size"] for r in rows] == [8.0, 64.0]
        assert all(r["kernel_us"] > 0 and r["reference_us"] > 0 for r in rows)
    assert printed[0] == "## forward (softmax): size, kernel µs, reference µs"


class TestMpReference:
    mpmath = pytest.importorskip("mpmath")

    def test_probabilities_sum_to_one_and_logs_agree(self) -> None:
        from softgrad.bench.accuracy import mp_reference

        x = [-3.5, 0.25, 700.0, 699.0]
        s, ls, lse = mp_reference(x)
        mp = self.mpmath
        with mp.workdps(700):
            assert abs(mp.fsum(s) - 1) < mp.mpf(10) ** -690
            for si, lsi, xi in zip(s, ls, x, strict=True):
                assert abs(mp.log(si) - lsi) < mp.mpf(10) ** -690
                assert abs(lsi - (mp.mpf(xi) - lse)) < mp.mpf(10) ** -690

    def test_agrees_with_float64_softmax(self) -> None:
        import numpy as np

        import softgrad
        from softgrad.bench.accuracy import mp_reference

        x = np.random.default_rng(0).standard_normal(16) * 5
        s, ls, _ = mp_reference(x)
        np.testing.assert_allclose(softgrad.softmax(x), [float(v) for v in s], rtol=1e-13)
        np.testing.assert_allclose(softgrad.log_softmax(x), [float(v) for v in ls], rtol=1e-13)

    def test_accuracy_suite_within_the_conditioning_bound(self) -> None:
        from softgrad.bench import accuracy

        printed: list[str] = []
        result = accuracy.run(rows_per_scale=2, out=printed.append)
        assert set(result) == {"float64", "float32"}
        for ratios in result.values():
            assert 0 <= ratios["softmax"] < 4  # the bound test_accuracy.py asserts
            assert 0 <= ratios["log_softmax"] < 4
        assert len(printed) == 3
