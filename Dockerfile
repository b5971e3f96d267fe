# The plugin's container image: CUDA PyTorch base + this package, `optical_inspection` on PATH.
#   docker build -t tao_siamese_oi:0.1.0 .
# The base pins the same torch as setup.cfg (2.13.0); pick the CUDA flavour your driver supports.
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/tao_siamese_oi
COPY launcher ./launcher
COPY setup.cfg pyproject.toml README.md ./
COPY tao_siamese_oi ./tao_siamese_oi
COPY entry_points ./entry_points
COPY specs ./specs
# torch comes from the base image (same version), so pip keeps it instead of downloading another build.
RUN pip install ./launcher . && optical_inspection --help > /dev/null
WORKDIR /workspace
CMD ["optical_inspection", "--help"]
