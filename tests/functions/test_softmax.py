"""softmax, log_softmax and logsumexp: values, behaviour contract, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg

from helpers import Backend, to_numpy

FORWARD = [sg.softmax, sg.log_softmax, sg.logsumexp]


def reference_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def logits_arrays(max_side: int = 6, scale: float = 50.0) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=max_side),
        elements=st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
    )


class TestValues:
    def test_softmax_matches_definition(self, xp: Backend) -> None:
        x = np.random.default_rng(0).normal(size=(4, 7)) * 5
        got = to_numpy(sg.softmax(xp.asarray(x)))
        np.testing.assert_allclose(got, reference_softmax(x), rtol=1e-13)

    def test_log_softmax_and_logsumexp(self, xp: Backend) -> None:
        x = np.random.default_rng(1).normal(size=(3, 5)) * 5
        lse = np.log(np.sum(np.exp(x), axis=-1))
        np.testing.assert_allclose(to_numpy(sg.logsumexp(xp.asarray(x))), lse, rtol=1e-13)
        np.testing.assert_allclose(
            to_numpy(sg.log_softmax(xp.asarray(x))), x - lse[:, None], rtol=1e-13, atol=1e-14
        )

    def test_keepdims(self, xp: Backend) -> None:
        x = xp.asarray(np.zeros((2, 3)))
        assert tuple(sg.logsumexp(x, keepdims=True).shape) == (2, 1)
        assert tuple(sg.logsumexp(x, axis=0).shape) == (3,)

    @pytest.mark.parametrize("axis", [0, 1, -1, 2])
    def test_axis(self, axis: int) -> None:
        x = np.random.default_rng(2).normal(size=(3, 4, 5))
        np.testing.assert_allclose(sg.softmax(x, axis), reference_softmax(x, axis), rtol=1e-13)

    def test_large_logits_do_not_overflow(self, xp: Backend) -> None:
        x = xp.asarray(np.array([1000.0, 1000.0, -1000.0]))
        np.testing.assert_allclose(to_numpy(sg.softmax(x)), [0.5, 0.5, 0.0])
        assert to_numpy(sg.logsumexp(x)) == pytest.approx(1000 + math.log(2))


class TestMasks:
    def test_masked_entries_are_excluded(self, xp: Backend) -> None:
        x = np.array([[1.0, 2.0, 1e30], [3.0, -1e30, 4.0]])
        mask = np.array([[True, True, False], [True, False, True]])
        s = to_numpy(sg.softmax(xp.asarray(x), where=xp.asarray(mask)))
        np.testing.assert_allclose(s[0], [*reference_softmax(np.array([1.0, 2.0])), 0.0])
        np.testing.assert_allclose(
            s[1], [reference_softmax(np.array([3.0, 4.0]))[0], 0.0, 0.7310585786300049]
        )
        ls = to_numpy(sg.log_softmax(xp.asarray(x), where=xp.asarray(mask)))
        assert ls[0, 2] == -np.inf
        assert ls[1, 1] == -np.inf
        lse = to_numpy(sg.logsumexp(xp.asarray(x), where=xp.asarray(mask)))
        np.testing.assert_allclose(lse, [np.logaddexp(1.0, 2.0), np.logaddexp(3.0, 4.0)])

    def test_fully_masked_row(self, xp: Backend) -> None:
        x = xp.asarray(np.array([[1.0, 2.0], [5.0, 6.0]]))
        mask = xp.asarray(np.array([[True, True], [False, False]]))
        np.testing.assert_array_equal(to_numpy(sg.softmax(x, where=mask))[1], [0.0, 0.0])
        np.testing.assert_array_equal(
            to_numpy(sg.log_softmax(x, where=mask))[1], [-np.inf, -np.inf]
        )
        assert to_numpy(sg.logsumexp(x, where=mask))[1] == -np.inf

    def test_mask_broadcasts(self) -> None:
        x = np.zeros((2, 3))
        s = sg.softmax(x, where=np.array([True, True, False]))
        np.testing.assert_allclose(s, [[0.5, 0.5, 0.0]] * 2)

    def test_neg_inf_behaves_like_mask(self, xp: Backend) -> None:
        x = np.array([1.0, -np.inf, 2.0])
        masked = sg.softmax(np.array([1.0, 123.0, 2.0]), where=np.array([True, False, True]))
        np.testing.assert_array_equal(to_numpy(sg.softmax(xp.asarray(x))), masked)
        all_neg = xp.asarray(np.full(3, -np.inf))
        np.testing.assert_array_equal(to_numpy(sg.softmax(all_neg)), np.zeros(3))
        np.testing.assert_array_equal(to_numpy(sg.log_softmax(all_neg)), np.full(3, -np.inf))
        assert to_numpy(sg.logsumexp(all_neg)) == -np.inf

    def test_where_must_be_boolean(self) -> None:
        with pytest.raises(TypeError, match="where must be a boolean array"):
            sg.softmax(np.zeros(3), where=np.ones(3))

    def test_where_must_broadcast(self) -> None:
        with pytest.raises(ValueError, match=r"where has shape \(2,\)"):
            sg.softmax(np.zeros(3), where=np.ones(2, dtype=bool))


class TestInfNan:
    def test_pos_inf_shares_the_mass(self, xp: Backend) -> None:
        x = xp.asarray(np.array([[0.0, np.inf, np.inf, 5.0], [np.inf, 1.0, 2.0, 3.0]]))
        np.testing.assert_allclose(to_numpy(sg.softmax(x)), [[0, 0.5, 0.5, 0], [1, 0, 0, 0]])
        ls = to_numpy(sg.log_softmax(x))
        np.testing.assert_allclose(ls[0, 1:3], [-math.log(2)] * 2)
        assert ls[0, 0] == -np.inf
        np.testing.assert_array_equal(to_numpy(sg.logsumexp(x)), [np.inf, np.inf])

    def test_nan_poisons_its_row_only(self, xp: Backend) -> None:
        x = xp.asarray(np.array([[np.nan, 1.0, 2.0], [1.0, 2.0, 3.0]]))
        for f in (sg.softmax, sg.log_softmax):
            out = to_numpy(f(x))
            assert np.isnan(out[0]).all()
            assert np.isfinite(out[1]).all()
        lse = to_numpy(sg.logsumexp(x))
        assert np.isnan(lse[0])
        assert np.isfinite(lse[1])


class TestShapesAndDtypes:
    def test_empty_rows(self, xp: Backend) -> None:
        x = xp.asarray(np.zeros((0, 3)))
        assert tuple(sg.softmax(x).shape) == (0, 3)
        assert tuple(sg.logsumexp(x).shape) == (0,)

    def test_empty_axis(self, xp: Backend) -> None:
        x = xp.asarray(np.zeros((2, 0)))
        assert tuple(sg.softmax(x).shape) == (2, 0)
        assert tuple(sg.log_softmax(x).shape) == (2, 0)
        np.testing.assert_array_equal(to_numpy(sg.logsumexp(x)), [-np.inf, -np.inf])

    def test_length_one_axis(self, xp: Backend) -> None:
        x = xp.asarray(np.array([[3.0], [-7.0]]))
        np.testing.assert_array_equal(to_numpy(sg.softmax(x)), [[1.0], [1.0]])
        np.testing.assert_array_equal(to_numpy(sg.log_softmax(x)), [[0.0], [0.0]])
        np.testing.assert_array_equal(to_numpy(sg.logsumexp(x)), [3.0, -7.0])

    def test_integers_promote_to_default_float(self, xp: Backend) -> None:
        x = xp.asarray(np.array([1, 2, 3]))
        s = sg.softmax(x)
        default = xp.xp.__array_namespace_info__().default_dtypes()["real floating"]
        assert s.dtype == default
        np.testing.assert_allclose(
            to_numpy(s), reference_softmax(np.array([1.0, 2.0, 3.0])), rtol=1e-6
        )

    def test_bool_promotes(self) -> None:
        np.testing.assert_allclose(
            sg.softmax(np.array([True, False])), reference_softmax(np.array([1.0, 0.0]))
        )

    @pytest.mark.parametrize("f", FORWARD, ids=lambda f: f.__name__)
    def test_float16_computed_in_float32(self, f: object) -> None:
        x = np.array([1.0, 2.0, 11.0], dtype=np.float16)
        out = f(x)  # type: ignore[operator]
        assert out.dtype == np.float16
        ref = f(x.astype(np.float32))  # type: ignore[operator]
        np.testing.assert_array_equal(out, ref.astype(np.float16))

    def test_bfloat16_torch(self) -> None:
        torch = pytest.importorskip("torch")
        x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.bfloat16)
        s = sg.softmax(x)
        assert s.dtype == torch.bfloat16
        ref = sg.softmax(x.float()).to(torch.bfloat16)
        assert torch.equal(s, ref)

    @pytest.mark.parametrize("f", FORWARD, ids=lambda f: f.__name__)
    def test_complex_refused(self, f: object) -> None:
        with pytest.raises(TypeError, match="complex dtype"):
            f(np.array([1 + 1j, 2.0]))  # type: ignore[operator]

    def test_float32_stays_float32(self, xp: Backend) -> None:
        x = xp.asarray(np.array([1.0, 2.0], dtype=np.float32))
        assert sg.softmax(x).dtype == xp.xp.float32

    def test_bad_axis(self) -> None:
        with pytest.raises(
            ValueError, match=r"axis=2 is out of range for an array of 2 dimensions"
        ):
            sg.softmax(np.zeros((2, 2)), axis=2)
        with pytest.raises(TypeError, match="axis must be an int"):
            sg.softmax(np.zeros(2), axis=1.0)  # type: ignore[arg-type]

    def test_zero_dim_refused(self) -> None:
        with pytest.raises(ValueError, match="0-d array"):
            sg.softmax(np.ones(()))

    def test_python_list_refused(self) -> None:
        with pytest.raises(TypeError, match="expected an array"):
            sg.softmax([1.0, 2.0])  # type: ignore[arg-type]

    def test_namespace_is_preserved(self, xp: Backend) -> None:
        x = xp.asarray(np.ones((2, 2)))
        assert type(sg.softmax(x)) is type(x)


class TestProperties:
    @given(logits_arrays())
    def test_sums_to_one_and_bounded(self, x: np.ndarray) -> None:
        s = sg.softmax(x)
        assert np.all((s >= 0) & (s <= 1))
        np.testing.assert_allclose(np.sum(s, axis=-1), 1.0, rtol=1e-13)

    @given(logits_arrays(), st.floats(-1e3, 1e3))
    def test_shift_invariance(self, x: np.ndarray, c: float) -> None:
        np.testing.assert_allclose(sg.softmax(x + c), sg.softmax(x), atol=1e-11)

    @given(logits_arrays())
    def test_exp_log_softmax_is_softmax(self, x: np.ndarray) -> None:
        np.testing.assert_allclose(
            np.exp(sg.log_softmax(x)), sg.softmax(x), rtol=1e-12, atol=1e-300
        )

    @given(logits_arrays())
    def test_log_softmax_is_x_minus_logsumexp(self, x: np.ndarray) -> None:
        lse = sg.logsumexp(x, keepdims=True)
        np.testing.assert_allclose(sg.log_softmax(x), x - lse, rtol=1e-12, atol=1e-12)

    @given(logits_arrays(), st.data())
    def test_mask_equals_dropping_entries(self, x: np.ndarray, data: st.DataObject) -> None:
        mask = data.draw(hnp.arrays(np.bool_, x.shape))
        s = sg.softmax(x, where=mask)
        for idx in np.ndindex(x.shape[:-1]):
            row, m = x[idx], mask[idx]
            expected = np.zeros_like(row)
            if m.any():
                expected[m] = reference_softmax(row[m])
            np.testing.assert_allclose(s[idx], expected, rtol=1e-12, atol=1e-300)

    @given(logits_arrays())
    def test_argmax_preserved(self, x: np.ndarray) -> None:
        s = sg.softmax(x)
        assert np.all(np.take_along_axis(s, np.argmax(x, -1)[..., None], -1)[..., 0] == s.max(-1))


def test_dask_chunked_along_the_softmax_axis() -> None:
    da = pytest.importorskip("dask.array")
    x = np.random.default_rng(4).normal(size=(6, 9)) * 4
    lazy = da.from_array(x, chunks=(2, 4))  # the softmax axis spans three chunks
    np.testing.assert_allclose(sg.softmax(lazy).compute(), reference_softmax(x), rtol=1e-13)
    np.testing.assert_allclose(sg.logsumexp(lazy).compute(), np.log(np.exp(x).sum(-1)), rtol=1e-13)
    loss, grad = sg.cross_entropy_and_grad(lazy, da.from_array(np.arange(6) % 9, chunks=2))
    ref_loss, ref_grad = sg.cross_entropy_and_grad(x, np.arange(6) % 9)
    np.testing.assert_allclose(loss.compute(), ref_loss, rtol=1e-13)
    np.testing.assert_allclose(grad.compute(), ref_grad, rtol=1e-12)
