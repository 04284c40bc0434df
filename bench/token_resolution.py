"""Bearer-token resolution and claim verification, per request: cold and warm cache.

Usage: .venv/bin/python bench/token_resolution.py [--redis redis://127.0.0.1:6379/14] [-n 2000]
Prints milliseconds per operation (median and p99). Target: under 1 ms per request, warm.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from timing import report, timed  # bench/timing.py, beside this script

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.auth.secrets import token_hash
from chaoshub.core import claims, migrate
from chaoshub.core.cache import cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="", help="REDIS_URL for the cache (default: memory)")
    parser.add_argument("-n", type=int, default=2000, help="warm iterations")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="chaoshub-bench-")
    app = create_app({"CHAOSHUB_INSTANCE_PATH": folder, "REDIS_URL": args.redis,
                      "CACHE_PREFIX": f"chaoshub-bench-{os.getpid()}", "LOG_LEVEL": "WARNING"})
    migrate.upgrade(app)
    with app.app_context():
        auth.create_local_account("bench", "a long enough passphrase")
        secret = auth.create_token_for("bench", "bench", ["full"]).secret
        print(f"cache: {cache().backend.name}; databases: SQLite in {folder}")

        def cold():
            cache().forget(cache().key("auth", "token", token_hash(secret)))
            auth.resolve_credentials(bearer_token=secret, client_ip="127.0.0.1")

        report("token resolution, cold cache", timed(cold, max(args.n // 10, 50)))
        resolve = lambda: auth.resolve_credentials(bearer_token=secret,  # noqa: E731
                                                   client_ip="127.0.0.1")
        resolve()
        report("token resolution, warm cache", timed(resolve, args.n))

        claim_tokens = [resolve() for _ in range(args.n)]
        pending = iter(claim_tokens)
        report("claim verification, first sight", timed(lambda: claims.verify(next(pending)),
                                                         args.n))
        report("claim verification, already verified",
               timed(lambda: claims.verify(claim_tokens[0]), args.n))

    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    client.get("/api/v1/me", headers=headers)
    report("GET /api/v1/me with the token, warm (whole request)",
           timed(lambda: client.get("/api/v1/me", headers=headers), args.n // 2))


if __name__ == "__main__":
    main()
