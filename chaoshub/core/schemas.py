"""The base of the plain data services hand each other: immutable pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Data a service returns: read-only once made."""

    model_config = ConfigDict(frozen=True)
