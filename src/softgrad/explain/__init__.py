"""Explain the softmax derivative: the post's derivation, generated and machine-checked.

``derive(n)`` returns a :class:`Derivation` whose steps each name the rule they
apply (independence, exponential, quotient, sum, chain, …) and were verified by
SymPy when they were built; it renders as terminal text, Markdown, LaTeX and a
self-contained HTML page, and draws the dependency diagram.
"""

from softgrad._lib._extras import require as _require

# a missing SymPy is reported with the pip line that adds it (softgrad[explain])
_require("sympy", "explain", feature="softgrad.explain (softgrad derive)")

from softgrad.explain._derivation import Derivation as Derivation
from softgrad.explain._derivation import derive as derive
from softgrad.explain._diagram import DIAGRAM_LIMIT as DIAGRAM_LIMIT
from softgrad.explain._diagram import draw_dependencies as draw_dependencies
from softgrad.explain._model import RULES as RULES
from softgrad.explain._model import SYMBOLIC_LIMIT as SYMBOLIC_LIMIT
from softgrad.explain._model import CheckResult as CheckResult
from softgrad.explain._model import DerivationError as DerivationError
from softgrad.explain._model import Step as Step

__all__ = [
    "DIAGRAM_LIMIT",
    "RULES",
    "SYMBOLIC_LIMIT",
    "CheckResult",
    "Derivation",
    "DerivationError",
    "Step",
    "derive",
    "draw_dependencies",
]
