"""What the caller may see of many workspaces at once: for a service that found something in
them (experiments, runs) and may show only what the caller may read."""

from __future__ import annotations

from chaoshub.core import claims
from chaoshub.core.db import transaction
from chaoshub.dashboard import search as finder
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.schemas import WorkspaceSight
from chaoshub.dashboard.store import SERVICE


@interface.public(callers=("experiment",))
def workspace_sights(claim: str, workspace_ids: list[str]) -> list[WorkspaceSight]:
    """Of the workspaces with these ids (at most 500 are looked at), those the claim may see,
    with their names and what the claim sees of their executions; the others are left out."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        return finder.sights(session, user, workspace_ids)
