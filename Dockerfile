# syntax=docker/dockerfile:1
# One image for every role; the command picks it:
#   docker run chaoshub                                 the hub (gunicorn, every service)
#   docker run -e CHAOSHUB_SERVICES=auth chaoshub       one service (split mode)
#   docker run chaoshub chaoshub db upgrade             the migrations
# Settings come from the environment (.env.sample lists them); production needs SECRET_KEY and
# a signing key.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first, from stand-in packages, so that a code change does not reinstall them. The
# client (./client, the `chaoshub` command) goes in with the server, which depends on it by name.
COPY pyproject.toml setup.py README.md ./
COPY client/pyproject.toml client/README.md client/
RUN mkdir chaoshub client/chaoshub_client \
    && touch chaoshub/__init__.py client/chaoshub_client/__init__.py \
    && pip install ./client ".[postgres,tracing]" \
    && pip uninstall --yes chaoshub chaoshub-client
# The client is installed into the venv (the runtime stage needs no copy of client/); the server
# in place: the code stays at /app/chaoshub, next to the migrations it looks for in
# /app/migrations, and where skaffold's file sync writes changed files.
COPY client/ client/
RUN pip install --no-deps ./client
COPY chaoshub/ chaoshub/
RUN pip install --no-deps --editable .

FROM ${PYTHON_IMAGE}
# git fetches the repositories linked to workspaces (the workers' syncs), with ssh for ssh:// and
# git@host:path URLs; the runtime's only packages, without recommends (no compiler, no build tool).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/*
# Who owns the code: root in a release (the server cannot rewrite it); skaffold builds pass the
# server's uid so that file sync may replace files in a running container.
ARG CODE_OWNER=root
RUN groupadd --system --gid 10001 chaoshub \
    && useradd --system --uid 10001 --gid chaoshub --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin chaoshub \
    && mkdir /var/lib/chaoshub && chown chaoshub:chaoshub /var/lib/chaoshub
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=${CODE_OWNER} migrations/ migrations/
COPY --chown=${CODE_OWNER} chaoshub/ chaoshub/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHAOSHUB_ENV=production \
    CHAOSHUB_INSTANCE_PATH=/var/lib/chaoshub
# A numeric user, so that Kubernetes can check runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 8080
# Threads, because in split mode a request waits on calls to the other services, and each open
# stream of a run's live events holds one (at most half of them: RUN_STREAMS_PER_PROCESS). No
# control socket: gunicorn would make it under $HOME, which this user does not have.
# The hub writes one access log line per request itself (gunicorn's own is off); the config's hooks
# give the workers one folder of metrics (PROMETHEUS_MULTIPROC_DIR) that /metrics adds up.
CMD ["gunicorn", "--bind=0.0.0.0:8080", "--workers=2", "--threads=16", \
     "--config=python:chaoshub.gunicorn_config", "--no-control-socket", "chaoshub:create_app()"]
