"""Layer 5: the post's network as a scikit-learn estimator.

``_objective`` (the multinomial logistic loss, gradient, Hessian-vector
product and whole Hessian of one parameter vector, in a lean loop on buffers
allocated once), ``_solvers`` (L-BFGS, Newton-CG, Newton-Cholesky, momentum
SGD, Adam on any such objective, and ``solver="auto"``'s rule), ``_estimator``
(``SoftmaxClassifier``), ``_io`` (model files) and ``_validation`` (the
parameters' constraints).
Needs scikit-learn and SciPy: ``pip install 'softgrad[models]'``.
"""

from softgrad._lib._extras import require

# before anything imports scikit-learn: a missing extra says which pip line fixes it
require("sklearn", "models", feature="SoftmaxClassifier")
require("scipy", "models", feature="SoftmaxClassifier")

from softgrad.models._estimator import SoftmaxClassifier as SoftmaxClassifier
from softgrad.models._io import ModelFileError as ModelFileError
from softgrad.models._objective import MultinomialObjective as MultinomialObjective
from softgrad.models._validation import InvalidParameterError as InvalidParameterError
from softgrad.models._validation import validate_params as validate_params

__all__ = [
    "InvalidParameterError",
    "ModelFileError",
    "MultinomialObjective",
    "SoftmaxClassifier",
    "validate_params",
]
