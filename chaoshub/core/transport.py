"""The seam between services: a public function runs in this process or over HTTP, same contract.

Each service's `service.py` marks its public functions with `interface.public`. When the current app
hosts that service the call is a plain function call; otherwise it is a POST to
`{SERVICE_URL}/internal/rpc/{service}/{function}` with the signed claim in `Authorization`, the
other arguments as JSON, and the same typed errors raised back on this side. Each remote call also
carries the calling service's assertion (core/service_identity.py): a process serves only the
calls of the other services that a function names as its `callers`.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import typing
from collections.abc import Callable
from typing import Any

import requests
from flask import Blueprint, Flask, current_app, jsonify, request
from pydantic import TypeAdapter, ValidationError

from chaoshub.core import claims, metrics, request_ids, service_identity, tracing
from chaoshub.core.config import SERVICES
from chaoshub.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    error_from_payload,
    problem,
    pydantic_problems,
)

EXTENSION = "chaoshub.transport"
RPC_PREFIX = "/internal/rpc"
CLAIM_PARAMETER = "claim"

INTERFACES: dict[str, ServiceInterface] = {}


class PublicFunction:
    """One function of a service's public interface, with the adapters that carry it over HTTP."""

    def __init__(self, service: str, fn: Callable[..., Any], callers: tuple[str, ...] = ()):
        self.service = service
        self.fn = fn
        self.name = fn.__name__
        self.target = f"{service}/{self.name}"
        self.callers = frozenset(callers)
        self.signature = inspect.signature(fn)
        self.takes_claim = next(iter(self.signature.parameters), None) == CLAIM_PARAMETER

    @functools.cached_property
    def adapters(self) -> tuple[dict[str, TypeAdapter], TypeAdapter]:
        hints = typing.get_type_hints(self.fn)
        params = {
            name: TypeAdapter(hints.get(name, Any))
            for name in self.signature.parameters
            if name != CLAIM_PARAMETER
        }
        return params, TypeAdapter(hints.get("return", Any))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.service in current_app.config["CHAOSHUB_SERVICES"]:
            return self.fn(*args, **kwargs)
        return self.call_remote(*args, **kwargs)

    def call_remote(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function on the process that hosts its service."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        params, result = self.adapters
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if request_ids.current():
            headers[request_ids.HEADER] = request_ids.current()  # one id across the services
        body = {}
        for name, value in bound.arguments.items():
            if name == CLAIM_PARAMETER:
                headers["Authorization"] = f"Bearer {claims.portable(value)}"
            else:
                body[name] = params[name].dump_python(value, mode="json")
        # Encoded here: the assertion is bound to these very bytes.
        data = json.dumps(body).encode()
        headers[service_identity.HEADER] = service_identity.assertion(
            self.service, self.target, headers.get("Authorization", ""), data, self.callers)
        base = current_app.config[f"{self.service.upper()}_SERVICE_URL"]
        url = f"{base}{RPC_PREFIX}/{self.target}"
        started = time.perf_counter()
        try:
            with tracing.call_span(self.service, self.name, headers):
                response = http_session().post(
                    url, data=data, headers=headers,
                    timeout=current_app.config["SERVICE_TIMEOUT"])
        except requests.RequestException as exc:
            metrics.service_call(self.service, self.name, "unreachable",
                                 time.perf_counter() - started)
            raise ServiceUnavailable(f"the {self.service} service cannot be reached") from exc
        payload = _json_or_none(response)
        ok = response.status_code == 200 and isinstance(payload, dict)
        metrics.service_call(self.service, self.name, "ok" if ok else "error",
                             time.perf_counter() - started)
        if not ok:
            error = error_from_payload(payload, response.status_code)
            # The service's own Retry-After (a database restarting there, a rate limit) goes on
            # to the client as a monolith would have said it.
            if hasattr(error, "retry_after") and response.headers.get("Retry-After",
                                                                        "").isdigit():
                error.retry_after = int(response.headers["Retry-After"])
            raise error
        return result.validate_python(payload.get("result"))

    def call_from_request(self) -> Any:
        """Serve a remote call: decode the arguments, run the function, encode the result."""
        params, result = self.adapters
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("the call's body must be a JSON object")
        kwargs: dict[str, Any] = {}
        # Refused as an API body is: 422, with the pointer of each argument at fault.
        problems = []
        for name, value in body.items():
            if name not in params:
                problems.append(problem(name, "not an argument of this function"))
                continue
            try:
                kwargs[name] = params[name].validate_python(value)
            except ValidationError as exc:
                problems += pydantic_problems(exc, (name,))
        if problems:
            raise ValidationFailed("the call's arguments are not valid", problems)
        if self.takes_claim:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            kwargs[CLAIM_PARAMETER] = token if scheme.lower() == "bearer" else ""
        try:
            self.signature.bind(**kwargs)
        except TypeError as exc:
            raise BadRequest(str(exc)) from exc
        return result.dump_python(self.fn(**kwargs), mode="json")


class ServiceInterface:
    """The registry of one service's public functions."""

    def __init__(self, service: str):
        self.service = service
        self.functions: dict[str, PublicFunction] = {}
        INTERFACES[service] = self

    def public(self, fn: Callable[..., Any] | None = None, *, callers: tuple[str, ...] = ()
               ) -> Any:
        """Mark `fn` as part of the service's public interface, which the other services named
        in `callers` may call over HTTP (none by default: only its own service calls it)."""
        if fn is None:
            return functools.partial(self.public, callers=callers)
        if not set(callers) <= set(SERVICES) - {self.service}:
            raise ValueError(f"{fn.__name__}: callers name other services, not {callers}")
        function = PublicFunction(self.service, fn, callers)
        self.functions[function.name] = function
        functools.update_wrapper(function, fn)
        return function


def http_session() -> requests.Session:
    """The pooled HTTP session this app uses to reach other services."""
    return current_app.extensions[EXTENSION]


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


rpc = Blueprint("rpc", __name__, url_prefix=RPC_PREFIX)


@rpc.post("/<service>/<name>")
def call(service: str, name: str):
    """Run a public function of a service hosted here for another process."""
    interface = INTERFACES.get(service)
    if interface is None or service not in current_app.config["CHAOSHUB_SERVICES"]:
        raise NotFound(f"no service {service!r} here")
    function = interface.functions.get(name)
    if function is None:
        raise NotFound(f"{service} has no public function {name!r}")
    caller = service_identity.verified_caller(service, function.target)
    if caller not in function.callers:
        raise Forbidden(f"the {caller} service may not call {service}.{name} "
                        "(its `callers` do not name it)")
    return jsonify({"result": function.call_from_request()})


def init_app(app: Flask) -> None:
    """Give the app its HTTP session, and serve remote calls when it hosts only some services,
    or every one with a service key of its own (development: one is made)."""
    app.extensions[EXTENSION] = requests.Session()
    config = app.config
    keyed = bool(config.get("CHAOSHUB_SERVICE_KEY") or config.get("CHAOSHUB_SERVICE_KEY_FILE")
                 or config["CHAOSHUB_ENV"] != "production")
    # A hub hosting every service still takes the calls of its workers, which host experiment
    # alone (no signing key) and prove it with the hub's own service key.
    if len(config["CHAOSHUB_SERVICES"]) < len(SERVICES) or keyed:
        service_identity.init_app(app)
        app.register_blueprint(rpc)
