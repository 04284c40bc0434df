"""Alembic environment of this service's database (see chaoshub.core.migrate)."""

from chaoshub.core.migrate import run_env

run_env()
