"""cross_entropy, cross_entropy_and_grad, cross_entropy_hvp against PyTorch and by properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import softgrad as sg

from helpers import Backend, to_numpy

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)
N, C = 7, 5
Z = RNG.normal(size=(N, C)) * 3
LABELS = RNG.integers(0, C, N)
LABELS_IGNORED = LABELS.copy()
LABELS_IGNORED[[2, 5]] = -100
PROBS = RNG.dirichlet(np.ones(C), N)
WEIGHT = RNG.uniform(0.1, 2.0, C)

CASES = [
    pytest.param(kind, weighted, ls, red, id=f"{kind}-{'w' if weighted else 'nw'}-ls{ls}-{red}")
    for kind, weighted, ls, red in itertools.product(
        ["index", "ignored", "probs"], [False, True], [0.0, 0.25], ["mean", "sum", "none"]
    )
]


def _target(kind: str) -> np.ndarray:
    return {"index": LABELS, "ignored": LABELS_IGNORED, "probs": PROBS}[kind]


def torch_reference(z, target, kind, weighted, ls, red):  # type: ignore[no-untyped-def]
    """Loss, gradient (of the sum for 'none') and Hessian-vector product from torch autograd."""
    zt = torch.tensor(z, requires_grad=True)
    kw = {
        "weight": torch.tensor(WEIGHT) if weighted else None,
        "label_smoothing": ls,
        "reduction": red,
    }
    if kind == "ignored":
        kw["ignore_index"] = -100
    loss = F.cross_entropy(zt, torch.tensor(target), **kw)
    (grad,) = torch.autograd.grad(loss.sum(), zt, create_graph=True)
    v = np.random.default_rng(1).normal(size=z.shape)
    (hvp,) = torch.autograd.grad((grad * torch.tensor(v)).sum(), zt)
    return loss.detach().numpy(), grad.detach().numpy(), v, hvp.numpy()


def ours(kind: str, weighted: bool, ls: float, red: str) -> dict:  # type: ignore[type-arg]
    return {
        "weight": WEIGHT if weighted else None,
        "ignore_index": -100 if kind == "ignored" else None,
        "label_smoothing": ls,
        "reduction": red,
    }


class TestAgainstTorch:
    @pytest.mark.parametrize(("kind", "weighted", "ls", "red"), CASES)
    def test_loss_grad_hvp(self, kind: str, weighted: bool, ls: float, red: str) -> None:
        target = _target(kind)
        loss_t, grad_t, v, hvp_t = torch_reference(Z, target, kind, weighted, ls, red)
        kw = ours(kind, weighted, ls, red)
        np.testing.assert_allclose(
            sg.cross_entropy(Z, target, **kw), loss_t, rtol=1e-13, atol=1e-15
        )
        loss, grad = sg.cross_entropy_and_grad(Z, target, **kw)
        np.testing.assert_allclose(loss, loss_t, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grad, grad_t, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(
            sg.cross_entropy_hvp(Z, target, v, **kw), hvp_t, rtol=1e-12, atol=1e-15
        )

    def test_class_axis_like_torch(self) -> None:
        """PyTorch puts classes on axis 1 of (N, C, d); ``axis=1`` does the same."""
        z = RNG.normal(size=(3, 4, 6))
        y = RNG.integers(0, 4, (3, 6))
        zt = torch.tensor(z, requires_grad=True)
        ref = F.cross_entropy(
            zt, torch.tensor(y), weight=torch.tensor(WEIGHT[:4]), label_smoothing=0.1
        )
        ref.backward()
        loss, grad = sg.cross_entropy_and_grad(z, y, axis=1, weight=WEIGHT[:4], label_smoothing=0.1)
        np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-12, atol=1e-16)

    def test_one_hot_probabilities_equal_index_targets(self) -> None:
        onehot = np.eye(C)[LABELS]
        for red in ("mean", "sum", "none"):
            a = sg.cross_entropy_and_grad(Z, LABELS, reduction=red, label_smoothing=0.2)
            b = sg.cross_entropy_and_grad(Z, onehot, reduction=red, label_smoothing=0.2)
            np.testing.assert_allclose(a[0], b[0], rtol=1e-13)
            np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-16)


class TestBackends:
    def test_same_values_everywhere(self, xp: Backend) -> None:
        kw = {"weight": WEIGHT, "ignore_index": -100, "label_smoothing": 0.1}
        ref_loss, ref_grad = sg.cross_entropy_and_grad(Z, LABELS_IGNORED, **kw)
        loss, grad = sg.cross_entropy_and_grad(
            xp.asarray(Z),
            xp.asarray(LABELS_IGNORED),
            weight=xp.asarray(WEIGHT),
            ignore_index=-100,
            label_smoothing=0.1,
        )
        np.testing.assert_allclose(to_numpy(loss), ref_loss, rtol=1e-13)
        np.testing.assert_allclose(to_numpy(grad), ref_grad, rtol=1e-12, atol=1e-16)
        v = RNG.normal(size=Z.shape)
        np.testing.assert_allclose(
            to_numpy(sg.cross_entropy_hvp(xp.asarray(Z), xp.asarray(PROBS), xp.asarray(v))),
            sg.cross_entropy_hvp(Z, PROBS, v),
            rtol=1e-12,
        )


class TestEdgeCases:
    def test_plain_gradient_is_s_minus_y(self) -> None:
        _, grad = sg.cross_entropy_and_grad(Z, LABELS, reduction="sum")
        np.testing.assert_allclose(grad, sg.softmax(Z) - np.eye(C)[LABELS], atol=1e-15)

    def test_all_ignored_mean_is_nan_with_zero_gradient(self) -> None:
        y = np.full(N, -100)
        loss, grad = sg.cross_entropy_and_grad(Z, y, ignore_index=-100)
        assert np.isnan(loss)
        np.testing.assert_array_equal(grad, 0.0)
        assert sg.cross_entropy(Z, y, ignore_index=-100, reduction="sum") == 0.0

    def test_ignored_samples_contribute_nothing(self) -> None:
        loss, grad = sg.cross_entropy_and_grad(
            Z, LABELS_IGNORED, ignore_index=-100, reduction="none"
        )
        assert loss[2] == 0.0
        np.testing.assert_array_equal(grad[[2, 5]], 0.0)

    def test_neg_inf_logit_with_zero_probability_is_finite(self) -> None:
        z = np.array([[0.0, -np.inf, 1.0]])
        t = np.array([[0.5, 0.0, 0.5]])
        loss, grad = sg.cross_entropy_and_grad(z, t)
        assert np.isfinite(loss)
        assert np.isfinite(grad).all()
        assert grad[0, 1] == 0.0

    def test_empty_batch(self) -> None:
        loss, grad = sg.cross_entropy_and_grad(np.zeros((0, 3)), np.zeros(0, dtype=int))
        assert np.isnan(loss)
        assert grad.shape == (0, 3)
        assert sg.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int), reduction="sum") == 0.0

    def test_float16_logits(self) -> None:
        z = Z.astype(np.float16)
        loss, grad = sg.cross_entropy_and_grad(z, LABELS)
        assert loss.dtype == np.float16
        assert grad.dtype == np.float16
        ref_loss, _ = sg.cross_entropy_and_grad(z.astype(np.float32), LABELS)
        assert loss == ref_loss.astype(np.float16)

    def test_label_smoothing_one_is_uniform_target(self) -> None:
        a = sg.cross_entropy(Z, LABELS, label_smoothing=1.0)
        b = sg.cross_entropy(Z, np.full((N, C), 1 / C))
        np.testing.assert_allclose(a, b, rtol=1e-13)


class TestErrors:
    def test_label_out_of_range(self) -> None:
        with pytest.raises(ValueError, match=r"target holds class index 7, outside \[0, 5\)"):
            sg.cross_entropy(Z, np.array([0, 1, 2, 3, 4, 7, 0]))
        with pytest.raises(ValueError, match=r"class index -1.*or equal ignore_index=-100"):
            sg.cross_entropy(Z, np.array([0, 1, 2, 3, 4, -1, 0]), ignore_index=-100)

    def test_target_shape(self) -> None:
        with pytest.raises(ValueError, match=r"without the class axis, \(7,\), got \(6,\)"):
            sg.cross_entropy(Z, LABELS[:6])
        with pytest.raises(ValueError, match=r"logits' shape \(7, 5\), got \(7, 4\)"):
            sg.cross_entropy(Z, PROBS[:, :4])

    @pytest.mark.parametrize(
        ("weight", "match"),
        [
            (np.ones(4), r"weight must have shape \(5,\)"),
            (np.array([1.0, -1.0, 1.0, 1.0, 1.0]), "non-negative"),
            (np.array([1.0, np.nan, 1.0, 1.0, 1.0]), "finite"),
            (np.array([1.0, np.inf, 1.0, 1.0, 1.0]), "finite"),
        ],
    )
    def test_bad_weight(self, weight: np.ndarray, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            sg.cross_entropy(Z, LABELS, weight=weight)

    @pytest.mark.parametrize("ls", [-0.1, 1.5])
    def test_label_smoothing_range(self, ls: float) -> None:
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
            sg.cross_entropy(Z, LABELS, label_smoothing=ls)

    def test_reduction(self) -> None:
        with pytest.raises(
            ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"
        ):
            sg.cross_entropy(Z, LABELS, reduction="avg")  # type: ignore[arg-type]

    def test_ignore_index_needs_index_targets(self) -> None:
        with pytest.raises(ValueError, match="ignore_index applies to integer class targets only"):
            sg.cross_entropy(Z, PROBS, ignore_index=0)

    def test_boolean_target(self) -> None:
        with pytest.raises(TypeError, match="got booleans"):
            sg.cross_entropy(Z, LABELS > 2)

    def test_hvp_direction_shape(self) -> None:
        with pytest.raises(ValueError, match=r"v must have the logits' shape \(7, 5\)"):
            sg.cross_entropy_hvp(Z, LABELS, np.ones(5))


class TestGradcheck:
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    @pytest.mark.parametrize("kind", ["ignored", "probs"])
    def test_gradient_and_hvp(self, dtype: type, kind: str) -> None:
        z = Z.astype(dtype)
        target = _target(kind)
        kw = ours(kind, True, 0.1, "mean")
        sg.gradcheck(
            lambda z: sg.cross_entropy(z, target, **kw),
            z,
            grad=lambda z: sg.cross_entropy_and_grad(z, target, **kw)[1],
            hvp=lambda z, v: sg.cross_entropy_hvp(z, target, v, **kw),
            seed=0,
        )


@pytest.mark.parametrize("func", ["cross_entropy", "cross_entropy_and_grad", "cross_entropy_hvp"])
def test_a_misspelt_option_is_refused_by_name(func: str) -> None:
    logits, target = np.zeros((2, 3)), np.array([0, 1])
    args = (logits, target, np.ones((2, 3))) if func == "cross_entropy_hvp" else (logits, target)
    with pytest.raises(TypeError, match="reducton"):
        getattr(sg, func)(*args, reducton="sum")


def test_hvp_takes_the_options_of_cross_entropy() -> None:
    rng = np.random.default_rng(0)
    logits, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    target, w = np.array([0, 2, -100, 1]), np.array([1.0, 2.0, 0.5])
    opts = {"weight": w, "label_smoothing": 0.1, "reduction": "sum"}
    hv = sg.cross_entropy_hvp(logits, target, v, **opts)
    eps = 1e-6
    fd = (
        sg.cross_entropy_and_grad(logits + eps * v, target, **opts)[1]
        - sg.cross_entropy_and_grad(logits - eps * v, target, **opts)[1]
    ) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8)


def test_a_misspelt_option_is_refused_for_torch_tensors_too() -> None:
    # softgrad.cross_entropy_and_grad sends tensors to softgrad.torch's version
    torch = pytest.importorskip("torch")
    logits, target = torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 1])
    with pytest.raises(TypeError, match="reducton"):
        sg.cross_entropy_and_grad(logits, target, reducton="sum")
