"""Which implementation the hot paths (`next`, labels) use.

On PostgreSQL each is one SQL statement (a data-modifying CTE with FOR UPDATE SKIP LOCKED):
one round trip, and the contended project row is locked for that statement only. Other
databases (the SQLite demo) take the ORM path, which does the same in several statements.
ANNOTATION_ONE_STATEMENT_SQL = False forces the ORM path (the tests run both).
"""

from django.conf import settings
from django.db import connection


def one_statement_sql() -> bool:
    return connection.vendor == "postgresql" and settings.ANNOTATION_ONE_STATEMENT_SQL
