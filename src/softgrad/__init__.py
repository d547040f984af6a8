"""softgrad: the softmax unit and its derivatives — exact, fast, explained."""

from softgrad._softmax import log_softmax as log_softmax
from softgrad._softmax import logsumexp as logsumexp
from softgrad._softmax import softmax as softmax

__all__ = ["log_softmax", "logsumexp", "softmax"]
__version__ = "0.1.0"
