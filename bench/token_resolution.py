"""Bearer-token resolution and claim verification, per request: cold and warm cache.

Usage: .venv/bin/python bench/token_resolution.py [--redis redis://127.0.0.1:6379/14] [-n 2000]
Prints milliseconds per operation (median and p99). Target: under 1 ms per request, warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

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
    parser.add_argument("--sustained", type=float, default=60.0,
                        help="seconds of new claims verified one after the other (0: none)")
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

        if args.sustained:
            sustained(args.sustained)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    client.get("/api/v1/me", headers=headers)
    report("GET /api/v1/me with the token, warm (whole request)",
           timed(lambda: client.get("/api/v1/me", headers=headers), args.n // 2))


def sustained(seconds: float) -> None:
    """Sign and verify a new claim after another for `seconds`, as a busy worker does (each
    request brings one): the cost per claim at the end must be the cost at the start."""
    windows: list[list[float]] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        window = []
        window_end = time.perf_counter() + min(5.0, seconds / 4)
        while time.perf_counter() < window_end:
            begin = time.perf_counter()
            token = claims.sign(sub="bench", name="bench", scopes=("*",))
            claims.verify(token)
            claims.verify(token)  # the request's other services read it again
            window.append((time.perf_counter() - begin) * 1000)
        windows.append(window)
    first, last = windows[0], windows[-1]
    ratio = statistics.median(last) / statistics.median(first)
    print(f"{'claims signed for ' + str(int(seconds)) + ' s: ms per claim, first window':<52} "
          f"median {statistics.median(first):7.3f} ms   ({len(first)} claims)")
    print(f"{'... last window':<52} median {statistics.median(last):7.3f} ms   "
          f"({len(last)} claims; {sum(map(len, windows))} in all)   last/first {ratio:4.2f}  "
          f"goal <= 1.5  {'ok' if ratio <= 1.5 else 'OVER'}")


if __name__ == "__main__":
    main()
