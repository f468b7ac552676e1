# syntax=docker/dockerfile:1
# Image for every pipeline process: `pipeline migrate | topics create | ingress | worker`.
#
# Stage 1 installs the package (`pip install ".[rocksdb]"`, PEP 621 pyproject at
# the repo root) into a virtualenv; stage 2 copies only that virtualenv, so compilers and
# the source tree stay out of the runtime image.
# NOTE: whatever the code reads at run time (SQL migrations, JSON Schemas) must
# be package data in pyproject.toml: the source tree is NOT in the final image.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler for dependencies without a wheel on the build platform (e.g.
# faust-streaming's Cython extensions on arm64); it never reaches the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the package build needs (see also .dockerignore).
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY agents ./agents
COPY schemas ./schemas
# Extra `rocksdb` (rocksdict): Kubernetes runs the worker with TABLE_STORE=rocksdb://.
RUN pip install --no-cache-dir ".[rocksdb]" \
    && pipeline --help >/dev/null

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TABLE_DATA_DIR=/var/lib/pipeline/tables
# Fixed numeric uid/gid so Kubernetes can verify runAsNonRoot and fsGroup matches.
RUN groupadd --system --gid 10001 pipeline \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pipeline \
       --no-create-home --shell /usr/sbin/nologin pipeline \
    && mkdir -p /var/lib/pipeline/tables \
    && chown -R 10001:10001 /var/lib/pipeline
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/pipeline
USER 10001:10001
# 8080: ingress HTTP; 6066: worker web (health/readiness).
EXPOSE 8080 6066
ENTRYPOINT ["pipeline"]
CMD ["--help"]
