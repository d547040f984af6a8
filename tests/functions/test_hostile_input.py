"""Hostile input to the functions (issue 13 items 4, 11, 16, 17): clear errors, no leaks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import softgrad as sg


@pytest.mark.parametrize(
    "x",
    [np.array([1, "a"], dtype=object), np.array(["1", "2"]), np.array([b"1", b"2"])],
    ids=["object", "str", "bytes"],
)
@pytest.mark.parametrize("fn", [sg.softmax, sg.log_softmax, sg.logsumexp])
def test_object_and_string_dtypes_are_refused_by_name(fn: Any, x: np.ndarray) -> None:
    # issue 13.4: an object array raised an internal AttributeError
    with pytest.raises(TypeError, match=rf"{fn.__name__}: x has dtype {x.dtype}.*astype\(float\)"):
        fn(x)


def test_cross_entropy_object_logits_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cross_entropy: logits has dtype object"):
        sg.cross_entropy(np.array([[1, "a"]], dtype=object), np.array([0]))


@pytest.mark.parametrize("fn", [sg.softmax, sg.log_softmax, sg.logsumexp])
def test_complex_input_error_names_the_function_called(fn: Any) -> None:
    # issue 13.17: logsumexp and log_softmax said "softmax is defined for real inputs only"
    with pytest.raises(TypeError, match=rf"^{fn.__name__}: x has complex dtype.*{fn.__name__} is"):
        fn(np.array([1 + 1j, 2.0]))


class TestIgnoreIndexDefault:
    """issue 13.11: PyTorch pads labels with -100 and ignores them by default."""

    z = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])

    def test_minus_100_is_ignored_by_default_like_pytorch(self) -> None:
        padded = sg.cross_entropy(self.z, np.array([0, 2, -100]))
        kept = sg.cross_entropy(self.z[:2], np.array([0, 2]))
        np.testing.assert_allclose(padded, kept, rtol=1e-15)

    def test_matches_torch_default(self) -> None:
        torch = pytest.importorskip("torch")
        y = np.array([1, -100, 2])
        want = torch.nn.functional.cross_entropy(torch.from_numpy(self.z), torch.from_numpy(y))
        np.testing.assert_allclose(sg.cross_entropy(self.z, y), want.numpy(), rtol=1e-14)

    def test_none_ignores_nothing(self) -> None:
        with pytest.raises(ValueError, match="class index -100, outside"):
            sg.cross_entropy(self.z, np.array([0, 2, -100]), ignore_index=None)

    def test_probability_targets_accept_the_default(self) -> None:
        probs = np.full((3, 3), 1 / 3)
        assert float(sg.cross_entropy(self.z, probs)) > 0

    def test_float_labels_hint_at_an_integer_cast(self) -> None:
        with pytest.raises(
            ValueError, match=r"cast it to an integer dtype \(target.astype\(int\)\)"
        ):
            sg.cross_entropy(self.z, np.array([0.0, 2.0, 1.0]))


class TestMixedLibraries:
    """issue 13.17: mixing array libraries names the argument, its library and the fix."""

    def test_torch_logits_numpy_weight(self) -> None:
        torch = pytest.importorskip("torch")
        with pytest.raises(
            TypeError,
            match=r"weight is a numpy array but logits is a torch array.*torch.as_tensor\(weight\)",
        ):
            sg.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), weight=np.ones(3))

    def test_numpy_x_jax_mask(self) -> None:
        jnp = pytest.importorskip("jax.numpy")
        with pytest.raises(
            TypeError, match=r"where is a jax array but x is a numpy array.*numpy.asarray\(where\)"
        ):
            sg.softmax(np.zeros(3), where=jnp.array([True, False, True]))

    def test_vjp_names_its_arguments(self) -> None:
        torch = pytest.importorskip("torch")
        with pytest.raises(TypeError, match=r"g is a numpy array but s is a torch array"):
            sg.softmax_vjp(torch.full((3,), 1 / 3, dtype=torch.float64), np.ones(3))


@pytest.mark.parametrize("fn", [sg.softmax, sg.log_softmax, sg.logsumexp])
def test_finite_jax_input_creates_no_inf(fn: Any) -> None:
    # issue 13.16: under jax.debug_infs, finite input built -inf intermediates
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, -1.0, 2.0]], dtype=jnp.float32)
    with jax.debug_infs(True):
        out = fn(x)
        assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(np.asarray(out), fn(np.asarray(x)), rtol=1e-6)
