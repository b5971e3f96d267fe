# The plugin's container image: PyTorch + this package, `optical_inspection` on PATH.
#   GPU servers:  docker build -t tao_siamese_oi:0.1.0 .
#   CPU servers:  docker build --build-arg BASE_IMAGE=python:3.11-slim -t tao_siamese_oi:0.1.0 .
#   air-gapped:   put every wheel in wheels/ first (docs/launcher.md), then add
#                 --build-arg PIP_OPTIONS="--no-index --find-links /tmp/wheels"
# The GPU base ships torch 2.13.0 (setup.cfg's pin), which pip keeps; on a plain Python base pip takes the CPU
# wheel from PyTorch's CPU index instead of PyPI's CUDA build (GBs).
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}
ARG PIP_OPTIONS="--extra-index-url https://download.pytorch.org/whl/cpu"

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/tao_siamese_oi
COPY wheels /tmp/wheels
COPY launcher ./launcher
COPY setup.cfg pyproject.toml README.md ./
COPY tao_siamese_oi ./tao_siamese_oi
COPY entry_points ./entry_points
COPY specs ./specs
COPY entry_points/wait_for_exec.sh /usr/local/bin/wait_for_exec
# launcher[job]: the job service's wrapper runs in this image (--backend-type local-docker) and opens a job's key.
RUN python3 -m pip install ${PIP_OPTIONS} './launcher[job]' . && rm -rf /tmp/wheels && optical_inspection --help > /dev/null \
    && python3 -c "import tao_launcher.service.run_and_record, cryptography"
WORKDIR /workspace
# Our launcher runs each task as the container's command. NVIDIA's launcher starts the image with its default
# command and then runs `docker exec <container> optical_inspection <action> ...`: the default command waits.
CMD ["wait_for_exec"]
