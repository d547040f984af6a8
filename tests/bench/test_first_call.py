"""The first_call suite's pieces that are cheap enough for the test suite (timings stay in it)."""

from __future__ import annotations

import os

from softgrad.bench import first_call


def test_extra_imports_are_the_modules_only_the_first_command_imports():
    # -X importtime of three real interpreters: json (and its submodules) is imported by
    # the target command only (not the first listed); fractions by another one as well, so it is not "extra"
    argv = {
        "second": ("import fractions",),
        "first": ("import json, fractions",),
        "third": ("pass",),
    }
    extra = dict(first_call._extra_imports(argv, dict(os.environ), "first"))
    assert "json" in extra
    assert extra["json"] > 0
    assert "fractions" not in extra
    assert "encodings" not in extra  # imported at every start-up
    assert list(extra.values()) == sorted(extra.values(), reverse=True)
