"""Which database errors the catalog answers as an outage (UNAVAILABLE) rather than a fault."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from examples.catalog.database import _gone


class _DriverError(Exception):
    """An asyncpg error as SQLAlchemy's dialect hands it on: a message and its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(message: str, sqlstate: str | None, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("SELECT 1", None, _DriverError(message, sqlstate))


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ("the database system is starting up", "57P03"),
        ("the database system is shutting down", "57P01"),
        ("terminating connection due to crash", "57P02"),
        ("sorry, too many clients already", "53300"),
        ("connection failure", "08006"),
        ("could not establish connection", "08001"),
    ],
)
def test_a_server_that_cannot_serve_now_is_an_outage(message: str, sqlstate: str) -> None:
    assert _gone(_wrapped(message, sqlstate), sqlite=False)


@pytest.mark.parametrize(
    ("message", "sqlstate", "kind"),
    [
        ('relation "nothing" does not exist', "42P01", DBAPIError),
        ("division by zero", "22012", DBAPIError),
        ("duplicate key value", "23505", IntegrityError),
        ("no state at all", None, DBAPIError),
    ],
)
def test_a_failed_statement_is_a_fault(
    message: str, sqlstate: str | None, kind: type[DBAPIError]
) -> None:
    assert not _gone(_wrapped(message, sqlstate, kind), sqlite=False)
