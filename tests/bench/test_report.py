"""The summary's ratios, best peers and goals are computed from the records as documented."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softgrad.bench._report import (
    GOALS,
    TABLE_HEADER,
    Record,
    SummaryRow,
    format_record,
    summarize,
    summary_lines,
)


def rec(impl: str, ms: float, op: str = "softmax", shape: tuple[int, ...] = (8, 4)) -> Record:
    return Record(op, shape, "float32", impl, ms, ms, 7, 1.0, 0.1, None, 0.0, 1.0, None)


class TestSummarize:
    def test_best_peer_ignores_softgrads_own_implementations(self) -> None:
        records = [
            rec("softgrad", 4.0),
            rec("softgrad (Array API)", 1.0),  # faster, but not a peer
            rec("numpy", 6.0),
            rec("torch", 8.0),
        ]
        [row] = summarize(records)
        assert row.best_peer == "numpy"
        assert row.vs_best_peer == pytest.approx(1.5)
        assert row.vs_torch == pytest.approx(2.0)
        assert row.goal == GOALS["softmax"]
        assert row.met is True

    def test_goal_missed_and_unknown(self) -> None:
        rows = summarize(
            [
                rec("softgrad", 10.0, op="cross_entropy"),
                rec("torch", 20.0, op="cross_entropy"),  # 2x < 3x goal
                rec("softgrad", 1.0, shape=(2, 2)),
                rec("numpy", 3.0, shape=(2, 2)),  # no torch: the goal cannot be judged
            ]
        )
        assert [(r.op, r.met) for r in rows] == [("cross_entropy", False), ("softmax", None)]
        assert rows[1].vs_torch is None
        assert rows[1].vs_best_peer == pytest.approx(3.0)

    def test_cases_without_softgrad_are_left_out_and_order_is_kept(self) -> None:
        rows = summarize(
            [
                rec("softgrad", 1.0, op="log_softmax"),
                rec("numpy", 1.0, op="softmax"),
                rec("softgrad", 1.0, op="softmax_vjp"),
            ]
        )
        assert [r.op for r in rows] == ["log_softmax", "softmax_vjp"]
        assert all(r.best_peer is None and r.vs_best_peer is None for r in rows)

    @given(
        ours=st.floats(0.01, 1e3),
        peers=st.dictionaries(
            st.sampled_from(["numpy", "scipy", "torch", "jax"]), st.floats(0.01, 1e3), min_size=1
        ),
    )
    def test_ratio_is_fastest_peer_over_softgrad(
        self, ours: float, peers: dict[str, float]
    ) -> None:
        [row] = summarize([rec("softgrad", ours), *(rec(k, v) for k, v in peers.items())])
        fastest = min(peers.values())
        assert row.best_peer_ms == fastest
        assert row.vs_best_peer == pytest.approx(fastest / ours)
        assert peers[row.best_peer or ""] == fastest
        if "torch" in peers:
            assert row.met == (peers["torch"] / ours >= GOALS["softmax"])


def test_summary_lines_one_per_row_and_a_goal_count() -> None:
    def row(op: str, met: bool | None, vs_peer: float) -> SummaryRow:
        return SummaryRow(op, (4, 4), "float64", 1.0, "torch", vs_peer, vs_peer, vs_peer, 1.25, met)

    lines = summary_lines([row("softmax", True, 2.0), row("log_softmax", False, 0.5)])
    assert len(lines) == 1 + 2 + 1
    assert lines[1].rstrip().endswith("yes")
    assert lines[2].rstrip().endswith("NO")
    assert lines[-1].startswith("goals met: 1 of 2; softgrad fastest on 1 of 2")
    assert "missed: log_softmax 4x4 float64" in lines[-1]


def test_table_row_has_the_headers_columns() -> None:
    line = format_record(rec("softgrad", 2.5))
    assert line.count("|") == TABLE_HEADER.count("|")
    assert line.startswith("| softmax | 8x4 | float32 | softgrad | 2.50 |")
