"""Ids that sort by when they were made (executions, feed outbox entries): each lands next to
the last in the indexes on its id."""

from __future__ import annotations

import time
import uuid

from chaoshub.core.models import new_ordered_id


def test_ordered_ids_are_uuid7_and_sort_by_the_millisecond_they_were_made():
    first = new_ordered_id()
    time.sleep(0.002)
    made = [new_ordered_id() for _ in range(200)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122
               for i in [first, *made])
    assert all(first < later for later in made)  # a later millisecond sorts after
    assert len(set(made)) == len(made)  # the same millisecond: told apart by 74 random bits
    stamp = int(uuid.UUID(first).hex[:12], 16)
    assert abs(stamp - time.time() * 1000) < 60_000
