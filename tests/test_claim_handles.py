"""Claims made for a request in the process that holds the keys: a handle, valid in that request
alone, signed only when it must leave the process."""

from __future__ import annotations

import pytest

from chaoshub.core import claims
from chaoshub.core.errors import Unauthorized


def make(app, path: str = "/api/v1/me") -> str:
    with app.test_request_context(path):
        return claims.sign(sub="a1", name="alice", scopes=("experiments:read",))


def test_a_claim_made_in_a_request_is_a_handle_for_that_request_alone(app):
    with app.test_request_context("/api/v1/me"):
        handle = claims.sign(sub="a1", name="alice", scopes=("experiments:read",))
        assert handle.startswith(claims.LOCAL_PREFIX) and "." not in handle.removeprefix(
            claims.LOCAL_PREFIX)  # nothing signed, nothing to decode
        user = claims.verify(handle)
        assert (user.sub, user.scopes) == ("a1", ("experiments:read",))
        with pytest.raises(Unauthorized):
            claims.verify(handle, audience="another-audience")
    with app.test_request_context("/api/v1/me"), pytest.raises(Unauthorized):
        claims.verify(handle)  # another request: nothing there
    with app.app_context(), pytest.raises(Unauthorized):
        claims.verify(handle)  # no request at all


def test_a_handle_leaves_the_process_only_signed(app):
    with app.test_request_context("/api/v1/me"):
        handle = claims.sign(sub="a1", name="alice", scopes=("experiments:read",),
                             workspace="w1", run="r1")
        token = claims.portable(handle)
        assert token.count(".") == 2 and claims.portable(token) == token
    with app.test_request_context("/api/v1/me"):
        user = claims.verify(token)  # any request, any process with the public keys
    assert (user.sub, user.workspace, user.run) == ("a1", "w1", "r1")


def test_calls_from_other_processes_and_work_outside_requests_get_signed_claims(app):
    remote = make(app, "/internal/rpc/auth/run_claim")
    assert not remote.startswith(claims.LOCAL_PREFIX)
    with app.app_context():
        outside = claims.sign(sub="a1", name="alice", scopes=("executions:read",))
    assert not outside.startswith(claims.LOCAL_PREFIX)
    with app.test_request_context("/api/v1/me"):
        assert claims.verify(remote).sub == claims.verify(outside).sub == "a1"
