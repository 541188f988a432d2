# The example catalog as an image: `twofold serve examples.catalog:app`, HTTP on
# port 8000 and native gRPC on port 50051, as a non-root user.
# Build: docker build -t twofold-catalog:0.1.0 .   (docs/deploy.md)

# An exact tag, not a moving one ("3.11-slim" changes under a rebuild). In a
# registry you control, pin the digest as well: FROM python:3.11.14-slim-bookworm@sha256:...
FROM python:3.11.14-slim-bookworm AS build

# Everything is a wheel on PyPI for linux x86_64 and aarch64 (grpcio, msgspec,
# uvloop, httptools, asyncpg, cryptography), so no compiler is needed; a
# dependency without one would fail here, in the build stage, never at run time.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A regular (not editable) install: the final stage copies the venv alone.
RUN /opt/venv/bin/pip install ".[example,postgres]"

FROM python:3.11.14-slim-bookworm AS runtime

# A fixed numeric id, so that Kubernetes' runAsNonRoot can check it without
# reading /etc/passwd, and no login shell or home directory to speak of.
RUN groupadd --system --gid 10001 twofold \
    && useradd --system --uid 10001 --gid twofold --no-create-home --shell /usr/sbin/nologin twofold

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The catalog is an example, not part of the installed package: it is imported
# from the working directory (twofold's loader puts it on sys.path).
COPY examples ./examples
# Compiled now, as root, so a read-only root filesystem costs no start-up time
# and the user cannot change the code it runs.
RUN /opt/venv/bin/python -m compileall -q /app/examples

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 10001:10001
EXPOSE 8000 50051

# One process per container: the orchestrator restarts and scales it
# (--workers N is for a host without one). 0.0.0.0: reachable from outside
# the container. SIGTERM drains: calls in flight get --grace seconds.
ENTRYPOINT ["twofold", "serve", "examples.catalog:app", "--host", "0.0.0.0", "--port", "8000", "--grpc-port", "50051"]
CMD ["--grace", "20"]
