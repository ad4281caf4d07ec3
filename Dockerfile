# syntax=docker/dockerfile:1
# One image for the operator, the worker and the emulator:
#   docker run IMAGE operator | worker | emulator --host 0.0.0.0 --port 10004
# Build: docker build -t shareferry:dev .   (tests/image checks this file; tests/e2e builds it)

# --- builder: the package and its dependencies in a virtualenv --------------------------------
FROM python:3.11.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY pyproject.toml README.md /src/
COPY operator /src/operator

# The install steps (tests/image replays the builder's RUN lines in a clean virtualenv).
RUN python -m venv /opt/shareferry \
    && /opt/shareferry/bin/pip install --no-cache-dir /src

# --- runtime: the same Python, the virtualenv, a non-root user --------------------------------
FROM python:3.11.11-slim-bookworm

ARG VERSION=0.1.0
ARG SOURCE=https://github.com/shareferry/shareferry

LABEL org.opencontainers.image.title="shareferry" \
      org.opencontainers.image.description="ShareFerry: Azure Files and Blob transfers, the Kubernetes operator, its worker and the Azure Files emulator" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 shareferry \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin shareferry

COPY --from=builder /opt/shareferry /opt/shareferry

# HOME is /tmp: the pods mount an emptyDir there and keep the root filesystem read-only.
ENV PATH=/opt/shareferry/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A numeric user, so that Kubernetes can check runAsNonRoot.
USER 10001:10001
WORKDIR /tmp

ENTRYPOINT ["shareferry"]
CMD ["--help"]
