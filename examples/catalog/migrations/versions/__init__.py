"""One module per schema revision, each with ``upgrade()`` and ``downgrade()``.

A revision describes its tables itself, with plain SQLAlchemy types, and
never imports the catalog's models: those describe the newest schema, and a
revision must keep describing the schema of its own time.
"""
