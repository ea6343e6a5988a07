"""The trained test workspace of tests/model, re-exported for the notebook tests."""

from tests.model.conftest import trained  # noqa: F401  (fixture)
