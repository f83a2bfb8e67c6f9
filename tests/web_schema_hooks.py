"""Examples of the string formats the lab's OpenAPI schema declares, for schemathesis.

The schema says a custom formula is ``gdlab-formula-x`` (a formula in x only) or ``gdlab-formula-xy``
(one using y); JSON Schema cannot spell a grammar, so these strategies generate such formulas. Used by
``tests/test_web_schema.py``, and by the command line as a hooks module::

    SCHEMATHESIS_HOOKS=web_schema_hooks PYTHONPATH=tests st run http://127.0.0.1:8000/openapi.json --checks all
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

NUMBERS = st.sampled_from(["1", "2", "3", "0.5", "10", "1e-3", "pi", "e"])
FUNCTIONS = st.sampled_from(["sin", "cos", "tanh", "exp", "abs", "sinh", "cosh"])


def formulas(variables: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Formulas of the lab's grammar using ``variables``, the last of them for sure."""
    leaves = st.one_of(st.sampled_from(variables), NUMBERS)
    terms = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" + ", " - ", "*"]), inner).map("".join),
            st.tuples(FUNCTIONS, inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(lambda t: f"({t})^2"),
        ),
        max_leaves=4,
    )
    return st.tuples(terms, st.sampled_from([" + ", "*"]), st.just(variables[-1])).map("".join)


schemathesis.openapi.format("gdlab-formula-x", formulas(("x",)))
schemathesis.openapi.format("gdlab-formula-xy", formulas(("x", "y")))
