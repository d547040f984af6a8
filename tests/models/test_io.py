"""Model files: round trips, refusals of damaged or foreign files, atomic writes."""

from __future__ import annotations

import os
import stat
import threading
import zipfile

import numpy as np
import pytest

from softgrad import SoftmaxClassifier
from softgrad.models import ModelFileError
from softgrad.models._io import FORMAT_VERSION, atomic_writer, integrity_checksum


@pytest.fixture
def fitted(iris):
    """A classifier fitted on iris with the default parameters."""
    X, y = iris
    return SoftmaxClassifier().fit(X, y)


@pytest.fixture
def saved(fitted, tmp_path):
    """The fitted classifier and the model file it was saved to."""
    clf = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    return clf, path


def stored_arrays(path):
    """The arrays of a model file, by name."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def rewrite(path, arrays, *, new_checksum=False):
    """Store ``arrays`` as the model file; with ``new_checksum``, one that matches them."""
    if new_checksum:
        arrays = {name: a for name, a in arrays.items() if name != "sha256"}
        arrays["sha256"] = np.array(integrity_checksum(arrays))
    np.savez(path, **arrays)


class TestSaveLoad:
    @pytest.mark.parametrize(
        "labels",
        [
            np.array(["setosa", "versicolor", "virginica"]),
            np.array([10, 20, 30]),
            np.array([1.0, 2.0, 4.0]),
            np.array(["a", "b", "c"], dtype=object),
        ],
        ids=["str", "int", "float", "object-str"],
    )
    def test_round_trip(self, iris, tmp_path, labels):
        X, y = iris
        clf = SoftmaxClassifier(C=0.5, solver="newton-cg").fit(X, labels[y])
        path = tmp_path / "model.npz"
        clf.save(path, metadata={"target": "species"})
        loaded = SoftmaxClassifier.load(path)
        np.testing.assert_array_equal(loaded.coef_, clf.coef_)
        np.testing.assert_array_equal(loaded.intercept_, clf.intercept_)
        np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert loaded.get_params()["C"] == 0.5
        assert loaded.get_params()["solver"] == "newton-cg"
        assert loaded.metadata_ == {"target": "species"}
        assert loaded.n_features_in_ == 4
        assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away

    def test_file_has_no_pickles(self, saved):
        _, path = saved
        with np.load(path, allow_pickle=False) as data:
            assert all(data[name].dtype != object for name in data.files)
            assert int(data["format_version"]) == FORMAT_VERSION

    def test_unstorable_labels_are_refused(self, iris, tmp_path):
        X, y = iris
        labels = np.array([(0,), "b", 2.5], dtype=object)[y]
        clf = SoftmaxClassifier().fit(X, np.array([str(v) for v in labels], dtype=object))
        clf.classes_ = np.array([(0,), "b", 2.5], dtype=object)
        with pytest.raises(ValueError, match="cannot save class labels of type"):
            clf.save(tmp_path / "m.npz")
        assert not list(tmp_path.iterdir())

    def test_truncated_file(self, saved):
        _, path = saved
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFileError, match="truncated"):
            SoftmaxClassifier.load(path)

    def test_tampered_weights(self, saved):
        _, path = saved
        arrays = stored_arrays(path)
        arrays["coef"] = arrays["coef"] * 2
        rewrite(path, arrays)
        with pytest.raises(ModelFileError, match="sha256"):
            SoftmaxClassifier.load(path)

    def test_not_a_model(self, tmp_path):
        path = tmp_path / "other.npz"
        np.savez(path, a=np.zeros(3))
        with pytest.raises(ModelFileError, match="not a softgrad SoftmaxClassifier"):
            SoftmaxClassifier.load(path)
        with pytest.raises(ModelFileError, match="does not exist"):
            SoftmaxClassifier.load(tmp_path / "missing.npz")
        (tmp_path / "text.npz").write_text("hello")
        with pytest.raises(ModelFileError, match="cannot read model file"):
            SoftmaxClassifier.load(tmp_path / "text.npz")

    def test_pickled_member_is_refused(self, tmp_path):
        # an object array inside the zip would need pickle: np.load refuses it
        path = tmp_path / "evil.npz"
        np.savez(path, format=np.array([{"x": 1}], dtype=object))
        with zipfile.ZipFile(path) as z:
            assert "format.npy" in z.namelist()
        with pytest.raises(ModelFileError):
            SoftmaxClassifier.load(path)

    def test_newer_format_version(self, saved):
        _, path = saved
        arrays = stored_arrays(path)
        arrays["format_version"] = np.array(FORMAT_VERSION + 1)
        rewrite(path, arrays, new_checksum=True)
        with pytest.raises(ModelFileError, match="upgrade softgrad"):
            SoftmaxClassifier.load(path)

    def test_flipped_bit_is_refused(self, saved):
        # one bit of the stored weights flipped (an uncompressed .npz stores them verbatim)
        clf, path = saved
        data = bytearray(path.read_bytes())
        at = bytes(data).find(np.ascontiguousarray(clf.coef_).tobytes())
        assert at > 0
        data[at + 3] ^= 0x10
        path.write_bytes(bytes(data))
        # the zip's CRC or the integrity checksum refuses it, whichever looks first
        with pytest.raises(ModelFileError, match="corrupt"):
            SoftmaxClassifier.load(path)

    def test_checksum_is_called_integrity_not_authenticity(self, saved):
        _, path = saved
        arrays = stored_arrays(path)
        arrays["intercept"] = arrays["intercept"] + 1.0
        rewrite(path, arrays)
        with pytest.raises(ModelFileError, match=r"sha256 integrity check.*not a signature"):
            SoftmaxClassifier.load(path)

    def test_invalid_stored_parameters_are_refused(self, saved):
        # a file with a consistent checksum but parameters no user could pass
        _, path = saved
        arrays = stored_arrays(path)
        arrays["params"] = np.array('{"C": -1.0}')
        rewrite(path, arrays, new_checksum=True)
        with pytest.raises(ModelFileError, match=r"invalid model data: .*C must be"):
            SoftmaxClassifier.load(path)


class TestSaveTarget:
    """Issue 13 item 13: errors name the path the user gave, never a temporary file."""

    def test_a_folder_is_refused_by_its_name(self, fitted, tmp_path):
        with pytest.raises(IsADirectoryError) as info:
            fitted.save(tmp_path)
        message = str(info.value)
        assert repr(str(tmp_path)) in message
        assert "model.npz" in message  # the fix: a file name inside it
        assert ".tmp" not in message
        assert list(tmp_path.iterdir()) == []

    def test_a_missing_folder_is_named(self, fitted, tmp_path):
        target = tmp_path / "no" / "such" / "m.npz"
        with pytest.raises(FileNotFoundError) as info:
            fitted.save(target)
        assert str(target) in str(info.value)
        assert ".tmp" not in str(info.value)


class TestAtomicWriter:
    def test_default_mode_follows_the_umask(self, tmp_path):
        old = os.umask(0o027)
        try:
            with atomic_writer(tmp_path / "f.bin") as fh:
                fh.write(b"x")
            plain = tmp_path / "plain.bin"
            plain.write_bytes(b"x")
        finally:
            os.umask(old)
        mode = stat.S_IMODE((tmp_path / "f.bin").stat().st_mode)
        assert mode == 0o640
        assert mode == stat.S_IMODE(plain.stat().st_mode)

    def test_an_error_leaves_the_old_file_and_no_temporary(self, tmp_path):
        target = tmp_path / "f.bin"
        target.write_bytes(b"old")

        def fail_halfway() -> None:
            with atomic_writer(target) as fh:
                fh.write(b"half a new")
                msg = "boom"
                raise RuntimeError(msg)

        with pytest.raises(RuntimeError, match="boom"):
            fail_halfway()
        assert target.read_bytes() == b"old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]

    def test_concurrent_writers_each_leave_a_whole_file(self, tmp_path):
        # no shared umask toggling and no shared temporary name: threads cannot collide
        target = tmp_path / "f.bin"
        payloads = [bytes([i]) * 100_000 for i in range(8)]
        errors: list[BaseException] = []

        def write(p: bytes) -> None:
            try:
                with atomic_writer(target) as fh:
                    fh.write(p)
            except OSError as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert target.read_bytes() in payloads
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
