"""The database: declarative base, units of work, and Alembic migrations."""
