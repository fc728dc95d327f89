# The okrflow image: deploy/docker-compose.yml builds it, deploy/k8s/ runs it (as `okrflow`).
# Not built on the development machines (they have no Docker engine); `tests/contract/
# test_deploy.py` installs the same files the same way into a fresh virtualenv instead.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The OKR file schema is a symlink into schemas/: copy its target next to the package.
COPY pyproject.toml README.md LICENSE ./
COPY schemas ./schemas
COPY services ./services
# Runtime dependencies only (`pip install .`, never the dev extras).
RUN pip install --no-cache-dir . && okrflow --help > /dev/null
# A fixed non-root user (uid and gid 10001, as deploy/k8s/ runs it) and the worker's
# scratch directory, which it owns.
RUN groupadd --system --gid 10001 okrflow \
    && useradd --system --uid 10001 --gid okrflow --no-create-home --shell /usr/sbin/nologin okrflow \
    && mkdir -p /var/lib/okrflow/worker \
    && chown -R okrflow /var/lib/okrflow
ENV OKRFLOW_WORKER_DATA_DIR=/var/lib/okrflow/worker
USER 10001:10001
CMD ["okrflow", "--help"]
