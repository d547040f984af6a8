"""Benchmark suite ``bridges``: forward + backward through PyTorch autograd and JAX, side by side.

For each shape it times, in the same run and one right after the other,

* **torch** (CPU, autograd): ``softgrad.torch.softmax``/``log_softmax``/
  ``cross_entropy`` then ``.backward`` against ``torch.softmax``/
  ``torch.log_softmax``/``torch.nn.functional.cross_entropy``;
* **jax** (``jax.jit``, forward + VJP): ``softgrad.jax`` against ``jax.nn``
  (cross-entropy: ``-mean(take_along_axis(jax.nn.log_softmax(z), y))``),

and prints the ratio peer time / softgrad time (above 1: softgrad is faster)
beside the goal of issue 9 (torch: ≥ 1.25× for softmax and log_softmax, ≥ 3×
for cross-entropy; JAX: ≥ 1×), with the load average and the cores other
processes used while each pair ran (timings on a busy machine are noisy).

Run it with ``softgrad bench bridges`` (``--quick`` for small shapes,
``--json PATH`` for the records), or ``python -m softgrad.bench.bridges``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from softgrad.bench._timing import _other_cores as other_cores
from softgrad.bench._timing import busy_jiffies, own_cpu

__all__ = ["GOALS", "Row", "cases", "main", "paired", "run"]

GOALS: dict[tuple[str, str], float] = {
    ("torch", "softmax"): 1.25,
    ("torch", "log_softmax"): 1.25,
    ("torch", "cross_entropy"): 3.0,
    ("jax", "softmax"): 1.0,
    ("jax", "log_softmax"): 1.0,
    ("jax", "cross_entropy"): 1.0,
}
"""Peer time over softgrad time that each framework × operation should reach."""

ROW_SHAPES = [
    ((4096, 4096), "float32"),
    ((256, 32000), "float32"),
    ((32768, 128), "float32"),
    ((8, 1_000_000), "float32"),
    ((256, 32000), "float64"),
]
CE_SHAPES = [((4096, 32000), "float32"), ((65536, 10), "float32")]
QUICK_ROW_SHAPES = [((64, 256), "float32"), ((16, 100), "float64")]
QUICK_CE_SHAPES = [((64, 50), "float32")]


@dataclasses.dataclass(frozen=True)
class Row:
    """softgrad and its peer on one framework × operation × shape × dtype."""

    framework: str
    op: str
    shape: tuple[int, ...]
    dtype: str
    peer: str
    peer_ms: float
    softgrad_ms: float
    ratio: float
    """peer time / softgrad time: above 1, softgrad is faster."""
    goal: float
    other_cores: float

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal


Step = Callable[[], Any]


def _backward(out: Any, grad: Any = None) -> None:
    out.backward(grad)


def _ready(out: Any) -> Any:
    """Wait for a JAX result (a pytree of arrays) to be computed."""
    import jax

    return jax.tree.map(lambda a: a.block_until_ready(), out)


def _torch_steps(op: str, shape: tuple[int, ...], dtype: str) -> tuple[str, Step, Step]:
    import torch
    import torch.nn.functional as F

    import softgrad.torch as sgt

    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, dtype=getattr(torch, dtype)).requires_grad_()
    if op == "cross_entropy":
        y = torch.randint(0, shape[-1], shape[:-1], generator=g)

        def ours() -> Any:
            x.grad = None
            _backward(sgt.cross_entropy(x, y))

        def peer() -> Any:
            x.grad = None
            _backward(F.cross_entropy(x, y))

        return "F.cross_entropy", ours, peer
    cot = torch.randn(*shape, generator=g, dtype=x.dtype)
    native = getattr(torch, op)
    mine = getattr(sgt, op)

    def ours_rows() -> Any:
        x.grad = None
        _backward(mine(x), cot)

    def peer_rows() -> Any:
        x.grad = None
        _backward(native(x, -1), cot)

    return f"torch.{op}", ours_rows, peer_rows


def _jax_steps(op: str, shape: tuple[int, ...], dtype: str) -> tuple[str, Step, Step]:
    import jax
    import jax.numpy as jnp

    import softgrad.jax as sgj

    if dtype == "float64":  # for the rest of the process: JAX computes in float32 otherwise
        config: Any = jax.config
        config.update("jax_enable_x64", True)
    key = jax.random.key(0)
    x = jax.random.normal(key, shape, dtype=getattr(jnp, dtype))
    if op == "cross_entropy":
        y = jax.random.randint(jax.random.key(1), shape[:-1], 0, shape[-1])

        def reference(z: Any, y: Any) -> Any:
            logp = jax.nn.log_softmax(z)
            return -jnp.mean(jnp.take_along_axis(logp, y[..., None], axis=-1))

        ours_ce = jax.jit(jax.value_and_grad(sgj.cross_entropy))
        peer_ce = jax.jit(jax.value_and_grad(reference))
        return (
            "jax.nn.log_softmax",
            lambda: _ready(ours_ce(x, y)),
            lambda: _ready(peer_ce(x, y)),
        )
    cot = jax.random.normal(jax.random.key(2), shape, dtype=x.dtype)

    def forward_and_vjp(f: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        def step(x: Any, g: Any) -> Any:
            out, pullback = jax.vjp(f, x)
            return out, pullback(g)[0]

        return jax.jit(step)

    ours = forward_and_vjp(getattr(sgj, op))
    peer = forward_and_vjp(getattr(jax.nn, op))
    return (
        f"jax.nn.{op}",
        lambda: _ready(ours(x, cot)),
        lambda: _ready(peer(x, cot)),
    )


STEPS = {"torch": _torch_steps, "jax": _jax_steps}


def cases(
    quick: bool = False, frameworks: tuple[str, ...] = tuple(STEPS)
) -> Iterator[tuple[str, str, tuple[int, ...], str]]:
    """(framework, op, shape, dtype) of every measurement, installed frameworks only."""
    rows = QUICK_ROW_SHAPES if quick else ROW_SHAPES
    ce = QUICK_CE_SHAPES if quick else CE_SHAPES
    for framework in frameworks:
        if importlib.util.find_spec(framework) is None:
            continue
        for shape, dtype in rows:
            for op in ("softmax", "log_softmax"):
                yield framework, op, shape, dtype
        for shape, dtype in ce:
            yield framework, "cross_entropy", shape, dtype


def paired(peer: Step, ours: Step, budget_s: float, min_reps: int) -> tuple[float, float, float]:
    """Median ms of ``peer`` and ``ours`` run alternately, and the other processes' cores.

    One warm-up call each (compilation), then peer, ours, peer, ours, ... at
    least ``min_reps`` times each and until ``budget_s`` has passed: load from
    the rest of the machine hits both alike.
    """
    peer()
    ours()
    times: tuple[list[float], list[float]] = ([], [])
    j0, c0, w0 = busy_jiffies(), own_cpu(), time.perf_counter()
    while len(times[1]) < min_reps or (time.perf_counter() - w0 < budget_s and len(times[1]) < 100):
        for fn, out in ((peer, times[0]), (ours, times[1])):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    wall = time.perf_counter() - w0
    other = other_cores(j0, busy_jiffies(), wall, (own_cpu() - c0) / wall)
    return 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1]), other


def run(
    quick: bool = False,
    budget_s: float = 0.4,
    min_reps: int = 3,
    frameworks: tuple[str, ...] = tuple(STEPS),
) -> list[Row]:
    """Time every case; the peer and softgrad of one case run one right after the other."""
    results = []
    for framework, op, shape, dtype in cases(quick, frameworks):
        peer_name, ours, peer = STEPS[framework](op, shape, dtype)
        peer_ms, ours_ms, other = paired(peer, ours, budget_s, min_reps)
        row = Row(
            framework,
            op,
            shape,
            dtype,
            peer_name,
            peer_ms,
            ours_ms,
            peer_ms / ours_ms,
            GOALS[framework, op],
            other,
        )
        results.append(row)
        print(format_row(row), flush=True)
    return results


HEADER = (
    "| framework | op | shape | dtype | peer | peer ms | softgrad ms | × peer | goal | met "
    "| other cores |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(r: Row) -> str:
    """The row as a line of the Markdown table headed by :data:`HEADER`."""
    shape = "x".join(map(str, r.shape))
    return (
        f"| {r.framework} | {r.op} | {shape} | {r.dtype} | {r.peer} | {r.peer_ms:.2f} | "
        f"{r.softgrad_ms:.2f} | {r.ratio:.2f} | {r.goal:g} | {'yes' if r.met else 'no'} | "
        f"{r.other_cores:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench bridges [--quick] [--json PATH] [--budget S] [--reps N]``; 0 when it ran."""
    parser = argparse.ArgumentParser(prog="softgrad bench bridges", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small shapes, for tests")
    parser.add_argument("--json", dest="json_path", help="write the rows to this JSON file")
    parser.add_argument(
        "--budget", type=float, default=0.4, help="seconds per measurement (default 0.4)"
    )
    parser.add_argument("--reps", type=int, default=3, help="timed runs of each side, at least")
    parser.add_argument(
        "--framework", choices=list(STEPS), action="append", help="only this one (repeatable)"
    )
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; threads: torch default")
    print(HEADER, flush=True)
    frameworks = tuple(args.framework or STEPS)
    budget = 0.05 if args.quick else args.budget
    rows = run(args.quick, budget, max(1, args.reps), frameworks)
    end = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    met = sum(r.met for r in rows)
    print(f"{met} of {len(rows)} rows meet their goal; load average at the end {end[0]:.2f}")
    if args.json_path:
        records = [{**dataclasses.asdict(r), "met": r.met} for r in rows]
        with open(args.json_path, "w") as f:
            json.dump({"load_average": [load, end], "rows": records}, f, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
