"""Hostile input to ``softgrad train``/``predict`` (issue 13): each case failed before its fix."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from softgrad.app._plots import loss_curve_svg
from softgrad.cli import cli

SVG = {"s": "http://www.w3.org/2000/svg"}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def softgrad(*args: str, **kwargs):
    """``python -m softgrad ARGS`` in a subprocess (real stdout, real exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "softgrad", *args],
        capture_output=kwargs.pop("capture_output", "stdout" not in kwargs),
        text=True,
        check=False,
        **kwargs,
    )


def write_csv(
    path: Path, header: list[str], rows: list[list[object]], delimiter: str = ","
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated classes in 2-D."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + 4.0 * y[:, None]
    return X, y


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on columns a, b (classes 0/1), and its data file."""
    tmp = tmp_path_factory.mktemp("model")
    X, y = blobs(40)
    data = write_csv(
        tmp / "d.csv", ["a", "b", "label"], [[*x, t] for x, t in zip(X, y, strict=True)]
    )
    result = invoke("train", "--data", str(data), "--target", "label", "--out", str(tmp / "run"))
    assert result.exit_code == 0, result.output
    return tmp / "run" / "model.npz"


class TestSplit:
    def test_a_single_sample_class_is_kept_in_training(self, tmp_path):
        X, y = blobs(12)
        rows = [[*x, t] for x, t in zip(X, y, strict=True)] + [[9.0, -9.0, "rare"]]
        data = write_csv(tmp_path / "d.csv", ["a", "b", "label"], rows)
        result = invoke(
            "train", "--data", str(data), "--target", "label", "--out", str(tmp_path / "r")
        )
        assert result.exit_code == 0, result.output
        m = json.loads((tmp_path / "r" / "metrics.json").read_text())
        assert sorted(map(str, m["classes"])) == ["0", "1", "rare"]  # K = 3 outputs
        cm = np.array(m["confusion_matrix"])
        assert cm.shape == (3, 3)
        assert cm.sum() == m["n_test"]
        assert "single sample" in result.stderr

    def test_tiny_test_set_is_warned_about(self, tmp_path):
        result = invoke("train", "--test-size", "0.01", "-q", "--out", str(tmp_path / "r"))
        assert result.exit_code == 0, result.output
        assert "warning: only 2 held-out sample(s)" in result.stderr

    def test_unstratified_split_is_warned_about(self, tmp_path):
        X, y = blobs(10)
        data = write_csv(
            tmp_path / "d.csv", ["a", "b", "label"], [[*x, t] for x, t in zip(X, y, strict=True)]
        )
        result = invoke(
            "train", "--data", str(data), "--target", "label", "--test-size", "0.1",
            "--out", str(tmp_path / "r"),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "not stratified" in result.stderr


class TestOutputs:
    """A full disk is one line and exit 1; a closed pipe ends quietly with exit 0."""

    @pytest.mark.parametrize(
        "args",
        [["--help"], ["train", "--help"], ["train", "-q"], ["train", "--json"]],
        ids=["help", "train-help", "train-quiet", "train-json"],
    )
    def test_full_disk(self, tmp_path, args):
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here")
        if args[0] == "train" and args[1] != "--help":
            args = [*args, "--out", str(tmp_path / "r")]
        with open("/dev/full", "w") as full:
            done = softgrad(*args, stdout=full, stderr=subprocess.PIPE)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "error: cannot write the output: No space left on device"
        )

    def test_predict_full_disk(self, model):
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here")
        with open("/dev/full", "w") as full:
            done = softgrad("predict", str(model), str(model.parent.parent / "d.csv"),
                            stdout=full, stderr=subprocess.PIPE)  # fmt: skip
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert "No space left on device" in done.stderr

    @pytest.mark.parametrize("command", ["predict", "derive", "help"])
    def test_closed_pipe_is_quiet(self, tmp_path, model, command):
        # far more than a pipe buffer (64 KiB), so the writer meets the closed end every time
        X, _ = blobs(6000)
        big = write_csv(tmp_path / "big.csv", ["a", "b"], X.tolist())
        args = {
            "predict": ["predict", str(model), str(big), "--proba"],
            "derive": ["derive", "-n", "8"],
            "help": ["train", "--help"],
        }[command]
        proc = subprocess.Popen(
            [sys.executable, "-m", "softgrad", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=300) == 0, err
        assert err == ""


class TestFeatures:
    def test_huge_values_are_standardised_without_overflow(self, tmp_path):
        X, y = blobs(40)
        X[:, 0] = np.where(y == 1, 1e300, -1e300) * (1 + 0.1 * np.abs(X[:, 1]))
        X[:, 1] = np.random.default_rng(1).normal(size=len(y))  # noise only
        data = write_csv(tmp_path / "d.csv", ["huge", "noise", "label"],
                         [[repr(float(a)), repr(float(b)), t] for (a, b), t in zip(X, y, strict=True)])  # fmt: skip
        done = softgrad("train", "--data", str(data), "--target", "label", "--json",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "RuntimeWarning" not in done.stderr
        m = json.loads(done.stdout)
        assert m["test_accuracy"] == 1.0

    def test_predict_refuses_renamed_columns(self, tmp_path, model):
        X, _ = blobs(4)
        other = write_csv(tmp_path / "o.csv", ["a", "c"], X.tolist())
        result = invoke("predict", str(model), str(other))
        assert result.exit_code == 1
        assert "missing 'b'" in result.stderr
        assert "not in training 'c'" in result.stderr

    def test_predict_takes_named_columns_beside_extra_target(self, tmp_path, model):
        X, y = blobs(4)
        named = write_csv(tmp_path / "n.csv", ["b", "label", "a"],
                          [[x[1], t, x[0]] for x, t in zip(X, y, strict=True)])  # fmt: skip
        result = invoke("predict", str(model), str(named))
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1:] == [str(t) for t in y]


class TestRunFolder:
    def test_existing_folder_is_refused_without_force(self, tmp_path):
        out = tmp_path / "r"
        out.mkdir()
        (out / "model.npz").write_bytes(b"precious")
        result = invoke("train", "-q", "--out", str(out))
        assert result.exit_code == 1
        assert "--force" in result.stderr
        assert (out / "model.npz").read_bytes() == b"precious"
        forced = invoke("train", "-q", "--out", str(out), "--force")
        assert forced.exit_code == 0, forced.output
        assert (out / "model.npz").read_bytes() != b"precious"

    def test_empty_out_is_refused(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        result = invoke("train", "-q", "--out", "")
        assert result.exit_code == 2
        assert "--out is empty" in result.stderr
        assert list(tmp_path.iterdir()) == []

    def test_interrupted_run_leaves_no_folder(self, tmp_path, monkeypatch):
        from softgrad.app import _plots

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(_plots, "plot_softmax_jacobian", interrupted)
        result = invoke("train", "-q", "--out", str(tmp_path / "r"))
        assert result.exit_code == 1  # "Aborted!"
        assert list(tmp_path.iterdir()) == []  # neither the run folder nor its staging copy


class TestCsvFiles:
    def test_semicolon_csv_is_detected(self, tmp_path):
        X, y = blobs(20)
        data = write_csv(tmp_path / "d.csv", ["a", "b", "label"],
                         [[*x, t] for x, t in zip(X, y, strict=True)], delimiter=";")  # fmt: skip
        result = invoke("train", "--data", str(data), "--target", "label", "-q",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.exit_code == 0, result.output

    def test_latin1_file_names_the_fix_and_reads_with_encoding(self, tmp_path):
        X, y = blobs(20)
        text = "a,b,espèce\n" + "".join(
            f"{x[0]},{x[1]},{'é' if t else 'o'}\n" for x, t in zip(X, y, strict=True)
        )
        data = tmp_path / "d.csv"
        data.write_bytes(text.encode("latin-1"))
        result = invoke("train", "--data", str(data), "--target", "espèce", "-q",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.exit_code == 1
        assert "line 1" in result.stderr
        assert "save the file as UTF-8" in result.stderr
        assert "--encoding" in result.stderr
        ok = invoke("train", "--data", str(data), "--target", "espèce", "-q",
                    "--encoding", "latin-1", "--out", str(tmp_path / "r"))  # fmt: skip
        assert ok.exit_code == 0, ok.output


class TestPolish:
    def test_progress_description_is_the_file_name(self, tmp_path):
        folder = tmp_path / ("a_very_long_folder_name_" * 3)
        folder.mkdir()
        X, y = blobs(20)
        data = write_csv(
            folder / "d.csv", ["a", "b", "label"], [[*x, t] for x, t in zip(X, y, strict=True)]
        )
        result = invoke("train", "--data", str(data), "--target", "label",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.exit_code == 0, result.output
        bar = next(line for line in result.stdout.splitlines() if line.startswith("training"))
        assert bar.startswith("training d.csv ")
        assert len(bar) <= 80

    def test_help_summaries_are_whole_sentences(self):
        result = invoke("--help")
        assert result.exit_code == 0
        commands = result.stdout.split("Commands:")[1]
        assert "..." not in commands
        assert "write a run folder." in " ".join(commands.split())

    def test_did_you_mean(self):
        result = invoke("trian")
        assert result.exit_code == 2
        assert "Did you mean 'train'?" in result.stderr

    @pytest.mark.parametrize(
        "args",
        [["trian"], ["train", "--C", "0"], ["train", "--data", "mnist"], ["derive", "-n", "0"]],
        ids=["command", "option", "runtime", "derive"],
    )
    def test_one_error_prefix(self, args):
        err = invoke(*args).stderr
        assert err.strip().splitlines()[-1].startswith("error: ")
        assert "Error:" not in err

    def test_shell_completion_is_documented_and_works(self):
        readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
        assert "_SOFTGRAD_COMPLETE=bash_source softgrad" in readme
        assert "_SOFTGRAD_COMPLETE=bash_source softgrad" in invoke("--help").stdout
        env = {**os.environ, "_SOFTGRAD_COMPLETE": "bash_source"}
        done = softgrad(env=env)
        assert done.returncode == 0
        assert "complete " in done.stdout

    @pytest.mark.parametrize(("solver", "unit"), [("adam", "epoch"), ("lbfgs", "iteration")])
    def test_loss_curve_says_epochs_on_a_log_axis(self, tmp_path, solver, unit):
        result = invoke("train", "-q", "--solver", solver, "--max-iter", "50",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f" {unit}s, run folder" in result.stdout
        m = json.loads((tmp_path / "r" / "metrics.json").read_text())
        svg = ET.fromstring(loss_curve_svg(m["loss_curve"], unit=m["iteration_unit"]))
        assert svg.find(".//s:g[@id='x-axis']/s:text[last()]", SVG).text == unit
        assert svg.find(".//s:g[@id='y-axis']", SVG).get("data-scale") == "log"
