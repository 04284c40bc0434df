"""A permission check (`dashboard.service.authorize`), cold and warm cache.

Usage: .venv/bin/python bench/permission_check.py [--redis redis://127.0.0.1:6379/14] [-n 5000]
Prints milliseconds per check (median and p99). Target: under 0.2 ms per check, warm.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from timing import report, timed  # bench/timing.py, beside this script

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import migrate
from chaoshub.core.cache import cache
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard import store

PASSWORD = "a long enough passphrase"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="", help="REDIS_URL for the cache (default: memory)")
    parser.add_argument("-n", type=int, default=5000, help="warm iterations")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="chaoshub-bench-")
    # A prefix of this run's own: a shared Redis is never flushed, its keys just expire.
    app = create_app({"CHAOSHUB_INSTANCE_PATH": folder, "REDIS_URL": args.redis,
                      "CACHE_PREFIX": f"chaoshub-bench-{os.getpid()}-{time.time_ns()}",
                      "LOG_LEVEL": "WARNING"})
    migrate.upgrade(app)
    with app.app_context():
        auth.create_local_account("owner", PASSWORD)
        auth.create_local_account("member", PASSWORD)
        owner = auth.resolve_credentials(session_token=auth.sign_in("owner", PASSWORD).token)
        org = dashboard.create_org(owner, "bench-team")
        dashboard.create_workspace(owner, "bench-team", "prod", "private")
        dashboard.add_member(owner, "bench-team", "member", "member")
        # A claim lives a minute: one made now lasts the whole run, as a request's would.
        claim = auth.resolve_credentials(session_token=auth.sign_in("member", PASSWORD).token)
        member_id = auth.get_account(claim).id
        print(f"cache: {cache().backend.name}; databases: SQLite in {folder}")

        def check():
            dashboard.authorize(claim, "bench-team", "prod", "run")

        def cold():
            cache().forget(store.name_key("bench-team", "prod"), store.role_key(org.id, member_id),
                           store.grant_by_name_key("bench-team", member_id))
            check()

        check()  # the claim's signature is checked once per claim, then remembered
        report("authorize (workspace by name), cold cache", timed(cold, max(args.n // 10, 100)))
        check()
        report("authorize (workspace by name), warm cache", timed(check, args.n))
        ws_id = dashboard.get_workspace(claim, "bench-team", "prod").id
        warm_by_id = lambda: dashboard.authorize_workspace(claim, ws_id, "run")  # noqa: E731
        warm_by_id()
        report("authorize_workspace (by id), warm cache", timed(warm_by_id, args.n))


if __name__ == "__main__":
    main()
