# The okrflow image deploy/docker-compose.yml builds (worker and exporter).
# Not built on the development machines (they have no Docker engine); `tests/contract/
# test_deploy.py` installs the same files the same way into a fresh virtualenv instead.
FROM python:3.11-slim
WORKDIR /app
# The OKR file schema is a symlink into schemas/: copy its target next to the package.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip install --no-cache-dir . && okrflow --help > /dev/null
ENV OKRFLOW_WORKER_DATA_DIR=/var/lib/okrflow/worker
CMD ["okrflow", "--help"]
