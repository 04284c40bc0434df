"""The plain data the experiment service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ExperimentView(BaseModel):
    """A stored experiment, its document, and where it lives."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    description: str
    tags: list[str]
    workspace_id: str
    org_id: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    document: dict[str, Any]
