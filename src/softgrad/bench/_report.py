"""The report: one record per measurement, the long table, and the one-screen summary.

The summary has one line per operation × shape × dtype: softgrad's median,
the fastest *peer* (every implementation that is not softgrad's own: NumPy,
SciPy, PyTorch, JAX), the ratio peer time / softgrad time (above 1: softgrad
is faster), the ratio against PyTorch, and whether the goal for that
operation (:data:`GOALS`, × PyTorch) is met.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = [
    "GOALS",
    "TABLE_HEADER",
    "Record",
    "SummaryRow",
    "format_record",
    "summarize",
    "summary_lines",
]

GOALS: dict[str, float] = {
    "softmax": 1.25,
    "log_softmax": 1.25,
    "softmax_vjp": 1.25,
    "cross_entropy": 3.0,
}
"""The speed each operation should reach, as PyTorch's time over softgrad's."""

SOFTGRAD = "softgrad"
"""The implementation the summary reports on (the public functions, kernels on)."""

TABLE_HEADER = (
    "| op | shape | dtype | impl | ms (median) | min ms | GB/s | × copy BW | × torch "
    "| other cores | max abs err |"
)


@dataclasses.dataclass
class Record:
    """One measurement: an implementation of an operation on one shape and dtype."""

    op: str
    shape: tuple[int, ...]
    dtype: str
    impl: str
    median_ms: float
    min_ms: float
    reps: int
    gbps: float
    copy_fraction: float
    vs_torch: float | None
    other_cores: float
    own_cores: float
    max_abs_err: float | None


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def format_record(r: Record) -> str:
    """The record as a row of the Markdown table headed by :data:`TABLE_HEADER`."""
    vt = "—" if r.vs_torch is None else f"{r.vs_torch:.2f}"
    err_s = "—" if r.max_abs_err is None else f"{r.max_abs_err:.1e}"
    return (
        f"| {r.op} | {_shape(r.shape)} | {r.dtype} | {r.impl} | {r.median_ms:.2f} | "
        f"{r.min_ms:.2f} | {r.gbps:.1f} | {r.copy_fraction:.2f} | {vt} | "
        f"{r.other_cores:.2f} | {err_s} |"
    )


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """softgrad against its peers on one operation × shape × dtype."""

    op: str
    shape: tuple[int, ...]
    dtype: str
    softgrad_ms: float
    best_peer: str | None
    best_peer_ms: float | None
    vs_best_peer: float | None
    """Best peer's median over softgrad's: above 1, softgrad is the fastest."""
    vs_torch: float | None
    goal: float | None
    """The × torch the operation should reach (:data:`GOALS`), None without one."""
    met: bool | None
    """Whether ``vs_torch >= goal``; None when either is unknown."""


def summarize(records: Sequence[Record]) -> list[SummaryRow]:
    """One :class:`SummaryRow` per case that has a ``softgrad`` record, in table order.

    Examples
    --------
    >>> def rec(impl, ms):
    ...     return Record("softmax", (8, 4), "float32", impl, ms, ms, 7, 1.0, 0.1, None, 0.0, 1.0, None)
    >>> [row] = summarize([rec("softgrad", 2.0), rec("numpy", 5.0), rec("torch", 3.0)])
    >>> row.best_peer, row.vs_best_peer, row.vs_torch, row.met
    ('torch', 1.5, 1.5, True)
    """
    cases: dict[tuple[str, tuple[int, ...], str], list[Record]] = {}
    for r in records:
        cases.setdefault((r.op, tuple(r.shape), r.dtype), []).append(r)
    rows = []
    for (op, shape, dtype), found in cases.items():
        ours = next((r for r in found if r.impl == SOFTGRAD), None)
        if ours is None:
            continue
        peers = [r for r in found if not r.impl.startswith(SOFTGRAD)]
        best = min(peers, key=lambda r: r.median_ms, default=None)
        torch_ms = next((r.median_ms for r in found if r.impl == "torch"), None)
        vs_torch = None if torch_ms is None else torch_ms / ours.median_ms
        goal = GOALS.get(op)
        rows.append(
            SummaryRow(
                op,
                shape,
                dtype,
                ours.median_ms,
                None if best is None else best.impl,
                None if best is None else best.median_ms,
                None if best is None else best.median_ms / ours.median_ms,
                vs_torch,
                goal,
                None if goal is None or vs_torch is None else vs_torch >= goal,
            )
        )
    return rows


def summary_lines(rows: Sequence[SummaryRow]) -> list[str]:
    """The summary as fixed-width text: a header, one line per row, the goal count."""

    def ratio(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    header = (
        f"{'op':<14}{'shape':<13}{'dtype':<9}{'softgrad ms':>12}  {'best peer':<10}"
        f"{'peer ms':>9}{'× peer':>8}{'× torch':>9}{'goal':>7}  met"
    )
    lines = [header]
    for r in rows:
        met = {True: "yes", False: "NO", None: "—"}[r.met]
        goal = "—" if r.goal is None else f"{r.goal:g}×"
        peer_ms = "—" if r.best_peer_ms is None else f"{r.best_peer_ms:.2f}"
        lines.append(
            f"{r.op:<14}{_shape(r.shape):<13}{r.dtype:<9}{r.softgrad_ms:>12.2f}  "
            f"{r.best_peer or '—':<10}{peer_ms:>9}{ratio(r.vs_best_peer):>8}"
            f"{ratio(r.vs_torch):>9}{goal:>7}  {met}"
        )
    judged = [r for r in rows if r.met is not None]
    fastest = sum(1 for r in rows if r.vs_best_peer is not None and r.vs_best_peer >= 1)
    missed = [f"{r.op} {_shape(r.shape)} {r.dtype}" for r in judged if not r.met]
    lines.append(
        f"goals met: {len(judged) - len(missed)} of {len(judged)}; "
        f"softgrad fastest on {fastest} of {len(rows)}"
        + (f"; missed: {', '.join(missed)}" if 0 < len(missed) <= 4 else "")
    )
    return lines
