"""``softgrad train``/``predict`` on files read in blocks: same results, same errors, streaming.

The block size is shrunk to a few kilobytes, so that the small files here
span many blocks and a "late" bad value sits in a block other than the first.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from softgrad.app import _blocks
from softgrad.app._data import DataError, read_csv
from softgrad.app._training import predict_csv
from softgrad.cli import cli

N = 1500
FEATURES = ["f0", "f1", "f2"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(_blocks, "BLOCK_ROWS", 100)


def table(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, 3))
    y = np.array(["ant", "bee", "cow"])[np.argmax(X @ rng.standard_normal((3, 3)), axis=1)]
    return X, y


def write_csv(path: Path, X, y, bad=None) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*FEATURES, "label"])
        for i, (x, t) in enumerate(zip(X.tolist(), y.tolist(), strict=True)):
            row = [repr(v) for v in x]
            if bad is not None and i == bad[0]:
                row[bad[1]] = bad[2]
            w.writerow([*row, t])
    return path


def write_parquet(path: Path, X, y) -> Path:
    cols = {name: X[:, j] for j, name in enumerate(FEATURES)}
    pq.write_table(pa.table({**cols, "label": y}), path, row_group_size=256)
    return path


class TestRead:
    def test_blocks_equal_the_line_reader(self, tmp_path):
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y)
        fast, slow = _blocks.read_table(path, "label"), read_csv(path, "label")
        np.testing.assert_array_equal(fast.X, slow.X)
        np.testing.assert_array_equal(fast.y, slow.y)
        assert fast.feature_names == slow.feature_names

    def test_a_short_row_estimate_grows_the_array(self, tmp_path, monkeypatch):
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y)
        monkeypatch.setattr(_blocks, "_rows_estimate", lambda path: 10)
        np.testing.assert_array_equal(
            _blocks.read_table(path, "label").X, read_csv(path, "label").X
        )

    def test_progress_reports_every_byte(self, tmp_path):
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y)
        seen: list[tuple[int, int]] = []
        _blocks.read_table(path, "label", progress=lambda done, total: seen.append((done, total)))
        assert len(seen) > 10  # block by block, not once at the end
        assert seen[-1] == (path.stat().st_size, path.stat().st_size)

    def test_parquet_equals_csv(self, tmp_path):
        X, y = table()
        a = _blocks.read_table(write_parquet(tmp_path / "d.parquet", X, y), "label")
        np.testing.assert_array_equal(a.X, X)
        np.testing.assert_array_equal(a.y, y)

    @pytest.mark.parametrize(
        ("cell", "shown"),
        [("nan", "'nan' is not a finite number"), ("x1", "'x1' is not a number"), ("", "empty")],
        ids=["nan", "text", "empty"],
    )
    def test_a_bad_value_in_a_late_block_names_its_line_and_column(self, tmp_path, cell, shown):
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y, bad=(1400, 2, cell))
        with pytest.raises(DataError) as info:
            _blocks.read_table(path, "label")
        # data row 1400 is line 1402: the header is line 1
        assert "line 1402, column 'f2': " in str(info.value)
        assert shown in str(info.value)

    def test_parquet_nan_in_a_late_block_names_its_row_and_column(self, tmp_path):
        X, y = table()
        X[1234, 1] = np.nan
        path = write_parquet(tmp_path / "d.parquet", X, y)
        with pytest.raises(DataError, match=r"d.parquet, row 1235, column 'f1': "):
            _blocks.read_table(path, "label")


class TestTrain:
    def test_csv_and_parquet_give_the_same_run(self, tmp_path):
        X, y = table()
        runs = {}
        for kind, path in [
            ("csv", write_csv(tmp_path / "d.csv", X, y)),
            ("parquet", write_parquet(tmp_path / "d.parquet", X, y)),
        ]:
            out = tmp_path / kind
            result = invoke("train", "--data", str(path), "--target", "label", "--out", str(out))
            assert result.exit_code == 0, result.output
            assert result.output.lstrip().startswith(f"reading d.{kind}")
            runs[kind] = json.loads((out / "metrics.json").read_text())
        for key in ("final_objective", "test_accuracy", "confusion_matrix", "n_iter"):
            assert runs["csv"][key] == runs["parquet"][key], key

    def test_late_nan_fails_with_line_and_column(self, tmp_path):
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y, bad=(1300, 0, "nan"))
        result = invoke("train", "--data", str(path), "--target", "label", "-q")
        assert result.exit_code == 1
        assert "line 1302, column 'f0': 'nan' is not a finite number" in result.stderr

    def test_scheduler_fits_on_the_cluster(self, tmp_path):
        distributed = pytest.importorskip("distributed")
        X, y = table()
        path = write_csv(tmp_path / "d.csv", X, y)
        # one solver on both sides (auto picks newton-cholesky in memory only)
        local = invoke("train", "--data", str(path), "--target", "label", "--json",
                       "--solver", "lbfgs", "--out", str(tmp_path / "local"))  # fmt: skip
        with distributed.LocalCluster(
            n_workers=1,
            processes=False,
            dashboard_address=":0",  # any free port: 8787 may be taken
        ) as cluster:
            remote = invoke("train", "--data", str(path), "--target", "label", "--json",
                            "--solver", "lbfgs", "--scheduler", cluster.scheduler_address,
                            "--out", str(tmp_path / "remote"))  # fmt: skip
        assert remote.exit_code == 0, remote.output
        a, b = json.loads(local.stdout), json.loads(remote.stdout)
        assert b["final_objective"] == pytest.approx(a["final_objective"], rel=1e-9)
        assert b["confusion_matrix"] == a["confusion_matrix"]

    def test_unreachable_scheduler_is_named(self, tmp_path):
        pytest.importorskip("distributed")
        result = invoke("train", "-q", "--scheduler", "tcp://127.0.0.1:9",
                        "--out", str(tmp_path / "r"))  # fmt: skip
        assert result.exit_code == 1
        assert "cannot reach the Dask scheduler at --scheduler 'tcp://127.0.0.1:9'" in (
            result.stderr
        )


class TestPredict:
    @pytest.fixture
    def model(self, tmp_path):
        X, y = table(seed=1)
        path = write_csv(tmp_path / "train.csv", X, y)
        out = tmp_path / "run"
        result = invoke("train", "--data", str(path), "--target", "label", "-q", "--out", str(out))
        assert result.exit_code == 0, result.output
        return out / "model.npz"

    @pytest.mark.parametrize("kind", ["csv", "parquet"])
    def test_streamed_predictions_equal_in_memory(self, tmp_path, model, kind):
        X, y = table(seed=2)
        csv_path = write_csv(tmp_path / "d.csv", X, y)
        path = csv_path if kind == "csv" else write_parquet(tmp_path / "d.parquet", X, y)
        result = invoke("predict", str(model), str(path), "--proba")
        assert result.exit_code == 0, result.output
        expected = predict_csv(model, csv_path, proba=True)  # the whole file in memory
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == expected.header
        assert rows[1:] == expected.rows

    def test_first_rows_are_written_before_a_late_error(self, tmp_path, model):
        X, y = table(seed=3)
        path = write_csv(tmp_path / "d.csv", X, y, bad=(1450, 1, "oops"))
        result = invoke("predict", str(model), str(path))
        assert result.exit_code == 1
        assert "line 1452, column 'f1': 'oops' is not a number" in result.stderr
        written = result.stdout.splitlines()
        # the blocks before the bad one went out before the file was read to its end
        assert written[0] == "prediction"
        assert 100 < len(written) - 1 < 1450
        expected = predict_csv(model, write_csv(tmp_path / "ok.csv", X, y)).rows
        assert [[r] for r in written[1:]] == expected[: len(written) - 1]
