# One image for every kubelabel process: `kubelabel operator | serve | worker | sync | model-server`.
#   docker build -t ghcr.io/kubelabel/kubelabel:0.1.0 .
# Runs as uid 10001 and writes only to /data (SQLite, uploads) and /tmp, so it works with
# readOnlyRootFilesystem: true.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/kubelabel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api_server ./api_server
COPY operator ./operator
COPY model_server ./model_server
COPY kubelabel_cli ./kubelabel_cli
RUN /opt/kubelabel/bin/pip install --no-compile . \
    && /opt/kubelabel/bin/python -m compileall -q /opt/kubelabel/lib

FROM python:3.11-slim
LABEL org.opencontainers.image.title="kubelabel" \
      org.opencontainers.image.description="Kubernetes-native data labeling platform" \
      org.opencontainers.image.source="https://github.com/kubelabel/kubelabel" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 kubelabel \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin kubelabel \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build /opt/kubelabel /opt/kubelabel
ENV PATH=/opt/kubelabel/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/data \
    TMPDIR=/tmp \
    KUBELABEL_DATA_DIR=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080 9090 9102
ENTRYPOINT ["kubelabel"]
CMD ["--help"]
