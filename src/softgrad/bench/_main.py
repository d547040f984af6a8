"""``softgrad bench`` called from Python: :func:`main` for the shims, :func:`run_cli` for each suite."""

from __future__ import annotations

__all__ = ["main", "run_cli"]


def main(argv: list[str] | None = None, prog_name: str = "softgrad bench") -> int:
    """``softgrad bench ARGV...`` in this process; return its exit status."""
    from softgrad.cli.bench import bench

    try:
        bench.main(args=list(argv or []), prog_name=prog_name)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run_cli(suite: str, argv: list[str] | None = None) -> int:
    """``softgrad bench SUITE ARGV...``: what each built-in suite's ``main(argv)`` runs."""
    return main([suite, *(argv or [])])
