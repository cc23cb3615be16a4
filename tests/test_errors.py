"""Error statuses come from the error classes: one table, the classes themselves."""

from __future__ import annotations

import pytest

from agent_sessions import errors
from agent_sessions.errors import ServiceError, status_of

CLASSES = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, ServiceError)]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_code_has_the_status_of_the_class_that_declares_it(cls: type[ServiceError]) -> None:
    first = next(c for c in CLASSES if c.code == cls.code)  # module order: base classes first
    assert status_of(None, cls.code) == first.status


def test_an_error_at_hand_gives_its_own_status() -> None:
    assert status_of(errors.TooLarge("too long"), "BAD_USER_INPUT") == 413
    assert status_of(None, "BAD_USER_INPUT") == 400
    assert status_of(errors.ShuttingDown()) == 503
    assert status_of(ValueError("not ours"), "NOPE") == 500
    assert status_of(None) == 500
