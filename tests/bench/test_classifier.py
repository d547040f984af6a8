"""The classifier suite's goal lines (timings stay in the suite)."""

from __future__ import annotations

from softgrad.bench import classifier


def _fit(model: str, seconds: float, accuracy: float = 0.9) -> dict[str, object]:
    return {"model": model, "median_s": seconds, "test_accuracy": accuracy}


def test_warm_goal_compares_the_default_model_whatever_the_table_holds():
    # the large sets' tables leave out scikit-learn's newton-cholesky: the goal must still
    # compare SoftmaxClassifier() (not the row that happens to come third) with sklearn's
    small = {
        "data": "small",
        "fits": [
            _fit("sklearn LogisticRegression()", 1.0),
            _fit("sklearn newton-cholesky", 0.1),
            _fit("softgrad SoftmaxClassifier()", 0.5),
            _fit("softgrad lbfgs", 2.0),
        ],
    }
    large = {"data": "large", "fits": [
        _fit("sklearn LogisticRegression()", 10.0), _fit("softgrad SoftmaxClassifier()", 3.0),
        _fit("softgrad lbfgs", 9.0, accuracy=0.5)]}  # fmt: skip
    lines = classifier.goal_lines([small, large], [])
    assert "met  warm  small: ratio 0.50, accuracy +0.0000" in lines[2]
    assert "met  warm  large: ratio 0.30, accuracy +0.0000" in lines[3]


def test_fresh_goal_misses_when_slower_or_less_accurate():
    rows = [
        {"data": "d", "threads": 1, "model": "sklearn LogisticRegression()",
         "fit_s": 1.0, "accuracy": 0.9},
        {"data": "d", "threads": 1, "model": "softgrad SoftmaxClassifier()",
         "fit_s": 0.9, "accuracy": 0.9},
        {"data": "d", "threads": None, "model": "sklearn LogisticRegression()",
         "fit_s": 1.0, "accuracy": 0.9},
        {"data": "d", "threads": None, "model": "softgrad SoftmaxClassifier()",
         "fit_s": 0.5, "accuracy": 0.8},
    ]  # fmt: skip
    lines = classifier.goal_lines([], rows)
    assert lines[2].startswith("  MISS fresh d, one BLAS thread: ratio 0.90")
    assert lines[3].startswith("  MISS fresh d, default threads: ratio 0.50, accuracy -0.1000")


def test_fresh_processes_report_the_median_fit_of_alternating_runs(monkeypatch):
    # one fresh process is one noisy sample: each cell runs FRESH_REPS of them, the models
    # taking turns, and reports the run with the median fit (not the first, not the best)
    monkeypatch.delenv(classifier.SKLEARNEX_ENV, raising=False)
    calls = []
    fits = iter([0.9, 0.1, 0.3, 0.5, 0.6, 0.2] * 2)

    def fake(name, spec, *, C, threads, **kwargs):
        calls.append(spec)
        fit = next(fits)
        return {"import_s": 0.0, "load_s": 0.0, "fit_s": fit, "score_s": 0.0,
                "process_s": fit, "accuracy": 1.0, "warm_s": []}  # fmt: skip

    monkeypatch.setattr(classifier, "fresh_process", fake)
    rows = classifier.fresh_processes(("d",), C=1.0, reps=3, out=lambda line: None)
    specs = [v for k, v in classifier.MODELS.items() if k.endswith("()")]
    assert len(specs) == 2
    assert calls[:6] == specs * 3  # alternating, three each, per thread setting
    by_model = {(r["threads"], r["model"]): r["fit_s"] for r in rows}
    sklearn, ours = (k for k in classifier.MODELS if k.endswith("()"))
    assert by_model[(1, sklearn)] == 0.6  # of 0.9, 0.3, 0.6
    assert by_model[(1, ours)] == 0.2  # of 0.1, 0.5, 0.2
