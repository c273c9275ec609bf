# syntax=docker/dockerfile:1
# Label Studio ML backend that ranks labeled images by how suspicious their label is.
#
#   docker build -t suspicious-label-backend .                      # CPU image (default)
#   docker build --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
#                -t suspicious-label-backend:gpu .                  # CUDA image (see docs/docker.md)
#
# The gunicorn command, the PORT/WORKERS/THREADS variables and MODEL_DIR=/data/models on a
# volume follow the conventions of the label-studio-ml-backend examples.
FROM python:3.11-slim

# Where the torch and torchvision wheels come from. The default is PyTorch's CPU-only index: its
# wheels are a fraction of the size of the CUDA build, which a CPU server never uses.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Keep these equal to the pins in requirements.txt (tests/deploy checks it).
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=9090 \
    WORKERS=1 \
    THREADS=8 \
    LOG_LEVEL=INFO \
    MODEL_DIR=/data/models

WORKDIR /app

# Dependencies first, code later: a code change does not re-run these layers.
# 1) torch and torchvision from TORCH_INDEX_URL; 2) exactly requirements.txt, in which the torch
# pins are then already satisfied (2.14.1+cpu satisfies ==2.14.1), so pip keeps the CPU wheels.
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# An unprivileged user that owns only the model directory.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app \
    && mkdir -p /data/models \
    && chown app:app /data/models

COPY detection/ ./detection/
COPY backend/ ./backend/
COPY scripts/ ./scripts/

USER 10001:10001
VOLUME ["/data/models"]
EXPOSE 9090

# Label Studio marks a backend disconnected when /health takes over a second; python is used
# because the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '9090') + '/health', timeout=4)"]

# --preload loads the app once before forking; --timeout 0 because training runs in background
# threads of the worker and gunicorn must not kill a worker that is busy. One worker: the
# training job and its queue live in the worker process (raise THREADS, not WORKERS).
CMD ["sh", "-c", "exec gunicorn --preload --bind \":${PORT}\" --workers \"${WORKERS}\" --threads \"${THREADS}\" --timeout 0 backend.wsgi:app"]
