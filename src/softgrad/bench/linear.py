r"""The linear suite: ``linear_cross_entropy`` against materialised logits and Cut Cross-Entropy.

``softgrad bench linear [--quick] [--json PATH] -- [--case a|b] [--impl NAME]...``

One forward + backward of a language-model head's loss,
:math:`\operatorname{mean}_i \mathrm{CE}(\mathrm{softmax}(h W^\top)_i, y_i)`
with its gradients for ``h`` and ``W`` (float32, no bias), by:

* ``softgrad``: :func:`softgrad.linear_cross_entropy_and_grad` on NumPy arrays
  (the numba/BLAS kernel);
* ``softgrad-recompute``: the same with the gradient pass recomputing the
  logits after a forward pass (Cut Cross-Entropy's order; ``softgrad`` takes
  the order chosen for NumPy, see ``softgrad._linear``);
* ``softgrad.torch``: :class:`softgrad.torch.LinearCrossEntropyHead`'s
  function on CPU tensors, ``loss.backward()``;
* ``torch``: ``F.cross_entropy(h @ W.T, y).backward()`` (the N × K logits
  materialised, the baseline of the ratios);
* ``cce``: ``cut_cross_entropy.linear_cross_entropy(..., impl="torch_compile")``
  (the only implementation of the package that runs without a GPU), from the
  interpreter given by ``--cce-python`` (default: this one); when it does not
  run, the error is recorded in the table.

Cases: ``a`` is N = 8192 tokens, D = 1024, K = 32 000 (Llama 2's vocabulary);
``b`` is N = 4096, D = 2048, K = 128 256 (Llama 3's). ``--quick`` shrinks
both to a few hundred tokens for a structure test.

How it measures. Each implementation runs in a fresh interpreter, so that
peaks do not mix: the inputs are allocated, the libraries imported and
``--warmup`` untimed calls made on the first ``--warm-rows`` tokens (the
same dtypes and K × D weight: numba's cache and torch's kernels load;
``torch.compile`` may compile again for the full N, inside the timed call); with every result released, the resident set's
high-water mark is reset to the current RSS (``5 > /proc/self/clear_refs``)
and that RSS is the baseline. ``--reps`` timed calls follow, and the *extra
peak* is the high-water mark (``VmHWM``) minus the baseline: every byte the
loss, its gradients (``dh`` and ``dW`` are included: N·D + K·D floats) and its
temporaries held at once. The same measure for every implementation (the
resident set covers NumPy, torch and compiled code alike); glibc is told to
``mmap`` every block over 128 KiB (``MALLOC_MMAP_THRESHOLD_``), so freed
arrays leave the resident set and reused heap does not hide a peak. Beside
each time: the cores other processes kept busy during it (``/proc/stat``),
and the 1-minute load average before and after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

__all__ = ["CASES", "IMPLS", "main", "report_lines", "run"]

CASES: dict[str, tuple[int, int, int]] = {"a": (8192, 1024, 32_000), "b": (4096, 2048, 128_256)}
QUICK: dict[str, tuple[int, int, int]] = {"a": (300, 32, 1000), "b": (200, 48, 3000)}
IMPLS = ("softgrad", "softgrad-recompute", "softgrad.torch", "torch", "cce")
BASELINE = "torch"

# The child: inputs, the implementation's one step, ru_maxrss before and after, the times.
_CHILD = r"""
import json, os, resource, sys, time
impl, n, d, k, warmup, reps, warm_rows = sys.argv[1], *map(int, sys.argv[2:8])
sys.path.insert(0, sys.argv[8])
import numpy as np
rng = np.random.default_rng(0)
h = (rng.standard_normal((n, d), dtype=np.float32) / np.float32(d) ** 0.5)
w = rng.standard_normal((k, d), dtype=np.float32)
y = rng.integers(0, k, size=n)
if impl.startswith("softgrad") and impl != "softgrad.torch":
    import softgrad as sg
    import softgrad._linear_blocks
    softgrad._linear_blocks.FUSED_ORDER = impl == "softgrad"
    def step(rows):
        return sg.linear_cross_entropy_and_grad(h[:rows], w, y[:rows])
else:
    import torch
    ht, wt = torch.from_numpy(h).requires_grad_(), torch.from_numpy(w).requires_grad_()
    yt = torch.from_numpy(y)
    if impl == "softgrad.torch":
        from softgrad import linear_cross_entropy as loss_fn
    elif impl == "torch":
        def loss_fn(h, w, y):
            return torch.nn.functional.cross_entropy(h @ w.T, y)
    else:
        from cut_cross_entropy import linear_cross_entropy as cce
        def loss_fn(h, w, y):
            return cce(h, w, y, impl="torch_compile")
    def step(rows):
        ht.grad = wt.grad = None
        loss = loss_fn(ht[:rows], wt, yt[:rows])
        loss.backward()
        return loss.detach(), ht.grad, wt.grad
def status(field):
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(field + ":"))
def busy():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]
def own():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
out = {"warmup_s": [], "times_s": [], "other_cores": []}
for i in range(warmup + reps):
    if i == warmup:  # everything released: reset the high-water mark to the current RSS
        if impl in ("softgrad.torch", "torch", "cce"):
            ht.grad = wt.grad = None
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = out["baseline_bytes"] = status("VmRSS")
    b0, c0, t0 = busy(), own(), time.perf_counter()
    res = step(min(warm_rows, n) if i < warmup else n)
    t = time.perf_counter() - t0
    other = max(0.0, (busy() - b0) / os.sysconf("SC_CLK_TCK") / t - (own() - c0) / t)
    if i < warmup:
        out["warmup_s"].append(t)
    else:
        out["times_s"].append(t)
        out["other_cores"].append(other)
    del res
out["extra_peak_bytes"] = status("VmHWM") - base
print("RESULT " + json.dumps(out))
"""


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _src_root() -> str:
    import softgrad

    return os.path.dirname(os.path.dirname(os.path.abspath(softgrad.__file__)))


def _fits(impl: str, n: int, k: int) -> str | None:
    """Why the materialised baseline is not run (None when it fits in the free memory)."""
    if impl not in ("torch", "cce"):
        return None
    need = 4 * n * k * 4  # logits, log-softmax, their gradients: float32 N x K each
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    except OSError:
        return None
    free = info.get("MemAvailable", need)
    if need > 0.8 * free:
        return f"skipped: needs about {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB available"
    return None


def _one(
    impl: str, shape: tuple[int, int, int], warmup: int, reps: int, warm_rows: int, python: str
) -> dict[str, Any]:
    """Run ``impl`` in a fresh interpreter; its times and extra peak, or why it did not run."""
    n, d, k = shape
    record: dict[str, Any] = {"impl": impl, "load_before": _load()}
    skip = _fits(impl, n, k)
    if skip is not None:
        return {**record, "error": skip}
    args = [python, "-c", _CHILD, impl, *map(str, (n, d, k, warmup, reps, warm_rows))]
    # big blocks always mmap-ed (returned to the system when freed): the RSS follows the arrays
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = subprocess.run(
        [*args, _src_root()], capture_output=True, text=True, check=False, env=env
    )
    record["load_after"] = _load()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {**record, "error": f"failed (exit {proc.returncode}): {tail[:200]}"}
    return {**record, **json.loads(lines[-1][len("RESULT ") :])}


def run(
    *,
    cases: tuple[str, ...] = ("a", "b"),
    impls: tuple[str, ...] = IMPLS,
    quick: bool = False,
    warmup: int = 1,
    reps: int = 1,
    warm_rows: int = 512,
    cce_python: str | None = None,
    out: Any = print,
) -> dict[str, Any]:
    """Measure each implementation on each case; print the table as each case finishes."""
    result: dict[str, Any] = {"cases": {}}
    for case in cases:
        shape = (QUICK if quick else CASES)[case]
        rows = []
        for impl in impls:
            python = (cce_python or sys.executable) if impl == "cce" else sys.executable
            rows.append(_one(impl, shape, warmup, reps, warm_rows, python))
        result["cases"][case] = {"shape": shape, "rows": rows}
        for line in report_lines(case, shape, rows):
            out(line)
    return result


def report_lines(case: str, shape: tuple[int, int, int], rows: list[dict[str, Any]]) -> list[str]:
    """The table of one case: median time and extra peak, each also as a ratio to ``torch``."""
    n, d, k = shape
    title = f"## case {case}: N={n} D={d} K={k} float32, forward + backward"
    head = f"{'impl':<20}{'median s':>10}{'x torch':>9}{'extra MiB':>11}{'x torch':>9}"
    lines = [
        f"{title} (extra peak: VmHWM over the RSS after warm-up)",
        f"{head}{'others':>8}  load 1-min",
    ]
    base = next((r for r in rows if r["impl"] == BASELINE and "error" not in r), None)
    for r in rows:
        if "error" in r:
            lines.append(f"{r['impl']:<20}{r['error']}")
            continue
        t = statistics.median(r["times_s"])
        mib = r["extra_peak_bytes"] / 2**20
        rt = rm = "-"
        if base is not None:
            rt = f"{t / statistics.median(base['times_s']):.2f}"
            rm = f"{r['extra_peak_bytes'] / max(base['extra_peak_bytes'], 1):.3f}"
        lines.append(
            f"{r['impl']:<20}{t:>10.2f}{rt:>9}{mib:>11.0f}{rm:>9}"
            f"{max(r['other_cores']):>8.2f}  {r['load_before']:.2f} -> {r['load_after']:.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench linear [--quick] [--json PATH] [--case C] [--impl NAME] ...``."""
    p = argparse.ArgumentParser(prog="softgrad bench linear", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes (structure test)")
    p.add_argument("--json", dest="json_path", help="write the results to this file")
    p.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    p.add_argument("--impl", action="append", choices=IMPLS, help="default: all")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    p.add_argument("--reps", type=int, default=1, help="timed calls (default 1)")
    p.add_argument("--warm-rows", type=int, default=512, help="tokens of each warm-up call")
    p.add_argument("--cce-python", help="interpreter with cut-cross-entropy installed")
    a = p.parse_args(argv)
    result = run(
        cases=tuple(a.case or CASES),
        impls=tuple(a.impl or IMPLS),
        quick=a.quick,
        warmup=a.warmup,
        reps=a.reps,
        warm_rows=a.warm_rows,
        cce_python=a.cce_python,
    )
    if a.json_path:
        with open(a.json_path, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
