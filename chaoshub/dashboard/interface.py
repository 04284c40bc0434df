"""The dashboard service's registry of public functions, and the outbox of its domain events."""

from __future__ import annotations

from chaoshub.core import events
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard.models import OutboxAck, OutboxEvent
from chaoshub.dashboard.store import SERVICE

interface = ServiceInterface(SERVICE)
# Experiment deletes the experiments of the workspaces dashboard deletes.
EVENT_SUBSCRIBERS = ("experiment",)
outbox = events.Outbox(SERVICE, OutboxEvent, OutboxAck, EVENT_SUBSCRIBERS)
