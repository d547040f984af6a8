"""The suite registry and ``softgrad bench``: one line adds a suite; options are checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from softgrad.bench import _main, _suites
from softgrad.cli.bench import bench

FAKE = """
import json, sys
CALLS = []
def main(argv=None):
    CALLS.append(list(argv or []))
    return 3 if "--fail" in (argv or []) else 0
"""


@pytest.fixture
def fake_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "softgrad_fake_suite.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_suites, "SUITES", dict(_suites.SUITES))
    _suites.register("fake", "softgrad_fake_suite", "a suite added in one line")
    return "softgrad_fake_suite"


def test_registered_module_runs_with_forwarded_arguments(fake_suite: str, tmp_path: Path) -> None:
    import importlib

    module = importlib.import_module(fake_suite)
    path = str(tmp_path / "out.json")
    result = CliRunner().invoke(bench, ["fake", "--quick", "--json", path, "--", "--n", "5"])
    assert result.exit_code == 0, result.output
    assert module.CALLS[-1] == ["--quick", "--json", path, "--n", "5"]
    result = CliRunner().invoke(bench, ["fake", "--", "--fail"])
    assert result.exit_code == 3
    assert module.CALLS[-1] == ["--fail"]


def test_help_lists_installed_suites_with_click_options(fake_suite: str) -> None:
    result = CliRunner().invoke(bench, ["--help"])
    assert result.exit_code == 0
    assert "usage: python -m benchmarks" not in result.output
    assert "--quick" in result.output
    assert "--json" in result.output
    assert "a suite added in one line" in result.output
    for name in ("ops", "thresholds", "first_call", "classifier", "accuracy"):
        assert f"\n  {name} " in result.output


def test_registered_but_missing_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_suites, "SUITES", dict(_suites.SUITES))
    _suites.register("absent", "softgrad.bench.no_such_suite_xyz", "not written yet")
    assert "absent" not in _suites.available()
    result = CliRunner().invoke(bench, ["absent"])
    assert result.exit_code == 2
    assert "'absent' is not installed" in result.output
    with pytest.raises(ModuleNotFoundError, match=r"softgrad\.bench\.no_such_suite_xyz"):
        _suites.load("absent")


def test_unknown_suite_is_a_usage_error_naming_the_choices() -> None:
    result = CliRunner().invoke(bench, ["nosuch"])
    assert result.exit_code == 2
    assert "'nosuch' is not a suite; choose one of: ops" in result.output
    with pytest.raises(KeyError, match="unknown benchmark suite 'nosuch'"):
        _suites.load("nosuch")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["thresholds", "--op", "softmax"], "--op"),
        (["accuracy", "--quick"], "--quick"),
        (["ops", "--reps", "5"], "--reps"),
        (["classifier", "--first-call"], "--first-call"),
    ],
    ids=["op-thresholds", "quick-accuracy", "reps-ops", "first-call-classifier"],
)
def test_option_of_another_suite_is_refused(args: list[str], flag: str) -> None:
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 2
    assert f"{flag} does not apply to the {args[0]} suite" in result.output


def test_builtin_suite_refuses_extra_arguments() -> None:
    result = CliRunner().invoke(bench, ["accuracy", "--", "--rows", "3"])
    assert result.exit_code == 2
    assert "takes no extra arguments, got --rows 3" in result.output


def test_register_names_must_be_identifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_suites, "SUITES", dict(_suites.SUITES))
    with pytest.raises(ValueError, match="got 'two words'"):
        _suites.register("two words", "x", "y")


def test_run_cli_returns_the_exit_status(fake_suite: str) -> None:
    assert _main.run_cli("fake", ["--", "--fail"]) == 3
    assert _main.main(["fake"]) == 0
    assert _main.main(["--no-such-option"]) == 2


def test_json_written_for_a_builtin_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from softgrad.bench import accuracy

    monkeypatch.setattr(accuracy, "run", lambda out: {"float64": {"softmax": 0.5}})
    path = tmp_path / "acc.json"
    result = CliRunner().invoke(bench, ["accuracy", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text()) == {"float64": {"softmax": 0.5}}


def test_unwritable_json_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from softgrad.bench import accuracy

    monkeypatch.setattr(accuracy, "run", lambda out: {})
    path = tmp_path / "missing-dir" / "acc.json"
    result = CliRunner().invoke(bench, ["accuracy", "--json", str(path)])
    assert result.exit_code == 1
    assert f"cannot write --json {path}" in result.output
