# syntax=docker/dockerfile:1
# SecureCLI-Tuner training image: the official axolotl image plus this repo, installed from the lock.
#
# Base: axolotl's own release image at the lock's versions: axolotl 0.19.0 built on torch 2.13.0 (CUDA 13.0,
# Python 3.12). It brings the CUDA build of torch, flash-attn, deepspeed and bitsandbytes; nothing below
# re-resolves them. Another tag: `docker build --build-arg BASE_IMAGE=axolotlai/axolotl:TAG .`; the build
# stops at its first RUN when that image's axolotl or torch differ from requirements.lock. To pin the digest
# too, append it to the default: `docker buildx imagetools inspect axolotlai/axolotl:0.19.0-py3.12-cu130-2.13.0`.
ARG BASE_IMAGE=axolotlai/axolotl:0.19.0-py3.12-cu130-2.13.0
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AXOLOTL_DO_NOT_TRACK=1 \
    HF_HOME=/workspace/data/hf-cache \
    SECURECLI_HOME=/workspace/data/securecli

WORKDIR /opt/securecli

# Fail early, before any install, when the base image is not built on the lock's axolotl and torch.
COPY requirements.lock scripts/check_base_image.py ./
RUN python check_base_image.py requirements.lock

# The lock is resolved on CPU, so torch, triton and the nvidia-* CUDA wheels stay the image's own:
# filter them out, then install every other pin exactly, without dependency resolution.
RUN grep -v -E '^(torch|torchvision|torchaudio|triton)==|^nvidia-' requirements.lock > /tmp/requirements.image.txt \
    && pip install --no-cache-dir --no-deps --requirement /tmp/requirements.image.txt \
    && rm /tmp/requirements.image.txt

COPY pyproject.toml README.md ./
COPY securecli ./securecli
COPY commandrisk ./commandrisk
COPY preprocessing ./preprocessing
COPY eval ./eval
COPY publish ./publish
COPY axolotl ./axolotl
RUN pip install --no-cache-dir --no-deps .

# Non-root runtime user. The image's Python lives under /root (miniconda), so /root gets the search
# bit only (o+x: traversable, not listable). Data, runs and the HF cache go to the mounted volume.
RUN useradd --no-log-init --create-home --uid 10001 --user-group --shell /bin/bash securecli \
    && chmod o+x /root \
    && mkdir -p /workspace/data/hf-cache /workspace/data/securecli \
    && chown -R 10001:10001 /workspace/data
VOLUME ["/workspace/data"]
USER 10001:10001
WORKDIR /workspace/data/securecli

ENTRYPOINT ["securecli"]
# Default: prepare -> train -> eval -> publish; the Hub repo id comes from SECURECLI_REPO_ID or --repo.
CMD ["pipeline", "/opt/securecli/axolotl/qwen25-coder-7b-qlora.yml"]
