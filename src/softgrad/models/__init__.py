"""Layer 5: the post's network as a scikit-learn estimator."""

from softgrad.models._classifier import SoftmaxClassifier as SoftmaxClassifier

__all__ = ["SoftmaxClassifier"]
