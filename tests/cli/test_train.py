"""``softgrad train`` and ``softgrad predict``: run folders, summaries, CSV files, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris

from softgrad import SoftmaxClassifier
from softgrad.app._data import DataError, read_csv
from softgrad.cli import cli

SVG = "{http://www.w3.org/2000/svg}svg"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    bunch = load_iris()
    path = tmp_path / "iris.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for x, t in zip(bunch.data, bunch.target, strict=True):
            w.writerow([*x, bunch.target_names[t]])
    return path


class TestTrain:
    def test_default_run_is_the_posts_network_on_iris(self, tmp_path):
        out = tmp_path / "run"
        result = run("train", "--out", str(out))
        assert result.exit_code == 0, result.output
        text = result.output
        assert "D = 4 inputs → K = 3 softmax outputs" in text
        assert "held-out accuracy" in text
        assert "confusion matrix" in text
        assert "gradient check ok" in text
        assert "loss curve" in text
        for name in ("model.npz", "metrics.json", "loss_curve.svg", "softmax_jacobian.svg"):
            assert (out / name).is_file()
        for name in ("loss_curve.svg", "softmax_jacobian.svg"):
            assert ET.parse(out / name).getroot().tag == SVG
        m = json.loads((out / "metrics.json").read_text())
        assert m["n_features"] == 4
        assert m["classes"] == ["setosa", "versicolor", "virginica"]
        assert m["test_accuracy"] > 0.9
        assert m["n_train"] + m["n_test"] == 150
        assert np.sum(m["confusion_matrix"]) == m["n_test"]
        assert m["gradcheck"]["ok"]
        assert m["gradcheck"]["max_rel_err"] < 1e-6
        assert m["converged"]
        assert len(m["loss_curve"]) == m["n_iter"]

    def test_saved_model_takes_raw_features(self, tmp_path):
        out = tmp_path / "run"
        assert run("train", "--out", str(out), "--quiet").exit_code == 0
        model = SoftmaxClassifier.load(out / "model.npz")
        X, y = load_iris(return_X_y=True)
        names = np.array(["setosa", "versicolor", "virginica"])
        assert model.score(X, names[y]) > 0.9
        assert model.metadata_["target"] == "species"

    def test_default_folder_and_latest_link(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        first = run("train", "--quiet")
        second = run("train", "--quiet", "--solver", "newton-cg")
        assert first.exit_code == second.exit_code == 0
        runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.name != "latest")
        assert len(runs) == 2
        latest = tmp_path / "runs" / "latest"
        m = json.loads((latest / "metrics.json").read_text())
        assert m["solver"] == "newton-cg"

    def test_json_is_the_only_stdout(self, tmp_path):
        result = CliRunner().invoke(
            cli, ["train", "--json", "--data", "wine", "--out", str(tmp_path)]
        )
        assert result.exit_code == 0
        m = json.loads(result.stdout)
        assert m["data"] == "wine"
        assert m["n_features"] == 13
        assert m["test_accuracy"] > 0.9

    def test_quiet_is_one_line(self, tmp_path):
        result = run("train", "--quiet", "--data", "digits", "--out", str(tmp_path))
        assert result.exit_code == 0
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("test accuracy 0.9")

    @pytest.mark.parametrize("solver", ["sgd", "adam"])
    def test_stochastic_solvers(self, tmp_path, solver):
        result = run(
            "train", "--json", "--solver", solver, "--max-iter", "300", "--out", str(tmp_path)
        )
        assert result.exit_code == 0
        assert json.loads(result.stdout)["test_accuracy"] > 0.85

    def test_not_converged_is_a_warning_not_an_error(self, tmp_path):
        result = CliRunner().invoke(cli, ["train", "--max-iter", "2", "--out", str(tmp_path)])
        assert result.exit_code == 0
        assert "warning:" in result.stderr
        assert "max_iter" in result.stderr
        assert not json.loads((tmp_path / "metrics.json").read_text())["converged"]

    def test_csv_data(self, tmp_path, iris_csv):
        out = tmp_path / "run"
        result = run(
            "train", "--data", str(iris_csv), "--target", "species", "--out", str(out), "--json"
        )
        assert result.exit_code == 0
        m = json.loads(result.stdout)
        assert m["target"] == "species"
        assert m["test_accuracy"] > 0.9


class TestMaxIterZero:
    def test_max_iter_0_keeps_the_initial_weights(self, tmp_path):
        # the estimator accepts max_iter=0 (scikit-learn's way to inspect the initial state)
        out = tmp_path / "run"
        result = CliRunner().invoke(cli, ["train", "--max-iter", "0", "-q", "--out", str(out)])
        assert result.exit_code == 0, result.output
        m = json.loads((out / "metrics.json").read_text())
        assert m["n_iter"] == 0
        assert m["final_objective"] == pytest.approx(np.log(3))  # W = 0: every class 1/3
        assert len(m["loss_curve"]) == 1
        assert not SoftmaxClassifier.load(out / "model.npz").coef_.any()


class TestUserMistakes:
    """Exit 1 with one clear line for bad data, 2 for bad usage; never a traceback."""

    def _fails(self, args, code=1):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.stderr

    def test_bad_value_names_line_and_column(self, tmp_path):
        path = tmp_path / "bad.csv"
        path.write_text("a,b,label\n1,2,x\n3,4,y\n5,oops,x\n")
        err = self._fails(
            ["train", "--data", str(path), "--target", "label", "--out", str(tmp_path)]
        )
        assert "line 4" in err
        assert "column 'b'" in err
        assert "'oops' is not a number" in err

    def test_missing_target_option_is_a_usage_error(self, iris_csv):
        assert "--target" in self._fails(["train", "--data", str(iris_csv)], code=2)

    def test_target_with_bundled_data_is_a_usage_error(self):
        assert "CSV files only" in self._fails(["train", "--target", "x"], code=2)

    def test_unknown_target_column(self, iris_csv):
        err = self._fails(["train", "--data", str(iris_csv), "--target", "colour"])
        assert "no column 'colour'" in err
        assert "species" in err

    def test_unknown_dataset(self):
        assert "unknown dataset 'mnist'" in self._fails(["train", "--data", "mnist"])

    def test_missing_file(self, tmp_path):
        err = self._fails(["train", "--data", str(tmp_path / "x.csv"), "--target", "y"])
        assert "does not exist" in err

    def test_ragged_row(self, tmp_path):
        path = tmp_path / "r.csv"
        path.write_text("a,b,label\n1,2,x\n3,y\n")
        assert "line 3: 2 values" in self._fails(
            ["train", "--data", str(path), "--target", "label"]
        )

    def test_one_class(self, tmp_path):
        path = tmp_path / "one.csv"
        path.write_text("a,label\n1,x\n2,x\n3,x\n")
        assert "one class" in self._fails(["train", "--data", str(path), "--target", "label"])

    @pytest.mark.parametrize(
        "args",
        [
            ["train", "--solver", "bfgs"],
            ["train", "--C", "0"],
            ["train", "--test-size", "1.5"],
            ["train", "--max-iter", "-1"],
            ["predict"],
        ],
        ids=["solver", "C", "test-size", "max-iter", "predict-args"],
    )
    def test_usage_errors_exit_2(self, args):
        self._fails(args, code=2)


class TestPredict:
    def test_predictions_ignore_the_target_column(self, tmp_path, iris_csv):
        out = tmp_path / "run"
        assert (
            run(
                "train", "--data", str(iris_csv), "--target", "species", "--out", str(out), "-q"
            ).exit_code
            == 0
        )
        result = run("predict", str(out / "model.npz"), str(iris_csv), "--proba")
        assert result.exit_code == 0
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["prediction", "p(setosa)", "p(versicolor)", "p(virginica)"]
        assert len(rows) == 151
        truth = [r[-1] for r in csv.reader(io.StringIO(iris_csv.read_text()))][1:]
        predicted = [r[0] for r in rows[1:]]
        assert np.mean(np.array(predicted) == np.array(truth)) > 0.9
        p = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)

    def test_columns_by_name_in_any_order(self, tmp_path, iris_csv):
        out = tmp_path / "run"
        run("train", "--data", str(iris_csv), "--target", "species", "--out", str(out), "-q")
        shuffled = tmp_path / "shuffled.csv"
        rows = list(csv.reader(io.StringIO(iris_csv.read_text())))
        order = [3, 0, 2, 1]
        shuffled.write_text("\n".join(",".join(r[j] for j in order) for r in rows) + "\n")
        a = run("predict", str(out / "model.npz"), str(iris_csv)).stdout
        b = run("predict", str(out / "model.npz"), str(shuffled)).stdout
        assert a == b

    def test_wrong_feature_count(self, tmp_path, iris_csv):
        out = tmp_path / "run"
        run("train", "--data", "wine", "--out", str(out), "-q")
        result = CliRunner().invoke(cli, ["predict", str(out / "model.npz"), str(iris_csv)])
        assert result.exit_code == 1
        assert "trained on 13" in result.stderr

    def test_corrupt_model(self, tmp_path, iris_csv):
        bad = tmp_path / "model.npz"
        bad.write_bytes(b"PK\x03\x04 not really a zip")
        result = CliRunner().invoke(cli, ["predict", str(bad), str(iris_csv)])
        assert result.exit_code == 1
        assert "cannot read model file" in result.stderr
        assert "Traceback" not in result.output


class TestCsvReader:
    def test_labels_int_or_str(self, tmp_path):
        p = tmp_path / "a.csv"
        p.write_text("x,y\n1,3\n2,4\n")
        assert read_csv(p, "y").y.dtype.kind == "i"
        p.write_text("x,y\n1,cat\n2,4\n")
        assert read_csv(p, "y").y.tolist() == ["cat", "4"]

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("", "empty"),
            ("x,y\n", "no data rows"),
            ("x,x,y\n1,2,a\n", "repeats column names"),
            ("x,y\n,a\n", "line 2, column 'x': an empty value"),
            ("x,y\ninf,a\n", "not a finite number"),
            ("x,y\n1,\n", "label is empty"),
        ],
        ids=["empty", "header-only", "duplicate", "empty-cell", "inf", "empty-label"],
    )
    def test_errors(self, tmp_path, text, match):
        p = tmp_path / "a.csv"
        p.write_text(text)
        with pytest.raises(DataError, match=match):
            read_csv(p, "y")


def test_python_dash_m_and_lazy_start():
    # `softgrad --help` must not pay for scikit-learn / matplotlib imports
    code = (
        "import sys; from softgrad.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('MODS', 'sklearn' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "train" in out.stdout
    assert "predict" in out.stdout
    assert "MODS False False" in out.stdout
    help_out = subprocess.run(
        [sys.executable, "-m", "softgrad", "train", "--help"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert help_out.returncode == 0
    assert "--test-size" in help_out.stdout
