"""The catalog's Alembic migrations: ``env.py`` and one script per revision in ``versions/``.

Run them with ``python -m examples.catalog migrate`` (see :mod:`examples.catalog.schema`).
"""
