"""softgrad: the softmax unit and its derivatives — exact, fast, explained."""

from typing import TYPE_CHECKING, Any

from softgrad._agnostic._derivatives import log_softmax_jacobian as log_softmax_jacobian
from softgrad._agnostic._derivatives import log_softmax_jvp as log_softmax_jvp
from softgrad._agnostic._derivatives import softmax_hessian as softmax_hessian
from softgrad._agnostic._derivatives import softmax_jacobian as softmax_jacobian
from softgrad._agnostic._derivatives import softmax_jvp as softmax_jvp
from softgrad._agnostic._losses import cross_entropy_hvp as cross_entropy_hvp
from softgrad._delegation import cross_entropy as cross_entropy
from softgrad._delegation import cross_entropy_and_grad as cross_entropy_and_grad
from softgrad._delegation import log_softmax as log_softmax
from softgrad._delegation import log_softmax_vjp as log_softmax_vjp
from softgrad._delegation import logsumexp as logsumexp
from softgrad._delegation import softmax as softmax
from softgrad._delegation import softmax_vjp as softmax_vjp
from softgrad._gradcheck import GradcheckError as GradcheckError
from softgrad._gradcheck import GradcheckResult as GradcheckResult
from softgrad._gradcheck import gradcheck as gradcheck
from softgrad._linear import linear_cross_entropy as linear_cross_entropy
from softgrad._linear import linear_cross_entropy_and_grad as linear_cross_entropy_and_grad

__all__ = [
    "GradcheckError",
    "GradcheckResult",
    "SoftmaxClassifier",
    "cross_entropy",
    "cross_entropy_and_grad",
    "cross_entropy_hvp",
    "gradcheck",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "log_softmax",
    "log_softmax_jacobian",
    "log_softmax_jvp",
    "log_softmax_vjp",
    "logsumexp",
    "softmax",
    "softmax_hessian",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from softgrad.models import SoftmaxClassifier as SoftmaxClassifier


def __getattr__(name: str) -> Any:
    # the classifier imports scikit-learn (~1 s): load it on first use only
    if name == "SoftmaxClassifier":
        from softgrad.models import SoftmaxClassifier

        return SoftmaxClassifier
    msg = f"module 'softgrad' has no attribute {name!r}"
    raise AttributeError(msg)
