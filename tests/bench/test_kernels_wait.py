"""The benchmarks time compiled kernels, never the reference serving during a warm-up."""

from __future__ import annotations

import os
import subprocess
import sys


def _wait_after_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SOFTGRAD_KERNELS_WAIT"}
    if env_value is not None:
        env["SOFTGRAD_KERNELS_WAIT"] = env_value
    code = "import os, softgrad.bench; print(os.environ.get('SOFTGRAD_KERNELS_WAIT'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_importing_the_benchmarks_asks_for_compiled_kernels() -> None:
    assert _wait_after_import(None) == "1"


def test_an_explicit_choice_is_kept() -> None:
    # the first_call suite runs processes with "" (background warm-up) on purpose
    assert _wait_after_import("") == ""
