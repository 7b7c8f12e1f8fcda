# syntax=docker/dockerfile:1.6
# provp images, multi-stage. Both build with the same scripts/install-deps.sh
# and scripts/build.sh that CI runs, then copy only the binaries and the
# shared-library packages they load into a slim runtime stage.
#
#   GPU (default target): CUDA devel build stage + official LibTorch zip,
#   Ubuntu 24.04 packages (same gRPC 1.51 / protobuf 3.21 / Abseil 20220623
#   as Debian 12), runtime on the CUDA runtime base.
#     docker build -t provp:gpu .
#     # offline: a folder holding libtorch.zip replaces the download stage
#     docker buildx build --build-context libtorch=/path/to/dir -t provp:gpu .
#   CPU: Debian 12 packages only (libtorch-dev 1.13), exactly CI's toolchain.
#     docker build --target cpu -t provp:cpu .
#
# Run (models/ holds ViT-B-16.pt and bpe_simple_vocab_16e6.txt.gz, as OpenAI
# ships them; api-keys.txt as in deploy/secrets/api-keys.example.txt):
#   docker run --gpus all -p 50051:50051 -p 9090:9090 -p 8080:8080 -v provp-data:/data \
#     -v $PWD/models:/models:ro -v $PWD/api-keys.txt:/run/secrets/api_keys:ro provp:gpu
# deploy/README.md has compose and Kubernetes instructions.

ARG CUDA_VERSION=12.6.3
ARG UBUNTU_VERSION=24.04
ARG LIBTORCH_VERSION=2.6.0
ARG LIBTORCH_CUDA=cu126
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/${LIBTORCH_CUDA}/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2B${LIBTORCH_CUDA}.zip

# ---------------------------------------------------------------------------
# LibTorch zip. Override this whole stage with --build-context libtorch=DIR
# (DIR holding libtorch.zip) to build without network access to pytorch.org.
FROM scratch AS libtorch
ARG LIBTORCH_URL
ADD ${LIBTORCH_URL} /libtorch.zip

# ---------------------------------------------------------------------------
# CPU build: Debian 12, every package from scripts/install-deps.sh.
FROM debian:12 AS cpu-build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    PROVP_BUILD_DIR=/build bash scripts/build.sh -DPROVP_BUILD_TESTS=OFF \
 && bash deploy/docker/collect-binaries.sh /build /out

# ---------------------------------------------------------------------------
# CPU runtime.
FROM debian:12-slim AS cpu
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=cpu-build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin provp \
 && mkdir -p /data /models && chown provp:provp /data
COPY --from=cpu-build /out/bin/ /usr/local/bin/
USER provp
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051 9090 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["provp", "--address", "127.0.0.1:50051", "health"]
ENTRYPOINT ["provp-server"]
CMD ["--model", "/models/ViT-B-16.pt", "--device", "cpu", "--data-dir", "/data", \
     "--listen", "0.0.0.0:50051", "--metrics-port", "9090", "--http-port", "8080", \
     "--api-keys", "/run/secrets/api_keys"]

# ---------------------------------------------------------------------------
# GPU build: CUDA devel image, Ubuntu packages, LibTorch from the zip.
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-ubuntu${UBUNTU_VERSION} AS gpu-build
# No GPU during the build: name the architectures instead of letting
# LibTorch's CMake probe for one (A100, A10/3090, L4/4090, H100/H200).
ENV DEBIAN_FRONTEND=noninteractive \
    TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
# libtorch-dev is Debian's CPU build (the zip replaces it); the Fashion-MNIST
# package is test data.
RUN PROVP_SKIP_PACKAGES="libtorch-dev dataset-fashion-mnist" bash scripts/install-deps.sh \
 && apt-get install -y -qq --no-install-recommends unzip \
 && rm -rf /var/lib/apt/lists/*
COPY --from=libtorch /libtorch.zip /tmp/libtorch.zip
RUN unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip && test -f /opt/libtorch/lib/libtorch.so
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    PROVP_BUILD_DIR=/build bash scripts/build.sh -DPROVP_BUILD_TESTS=OFF \
      -DCMAKE_PREFIX_PATH=/opt/libtorch \
 && LD_LIBRARY_PATH=/opt/libtorch/lib bash deploy/docker/collect-binaries.sh /build /out

# ---------------------------------------------------------------------------
# GPU runtime (default target).
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu${UBUNTU_VERSION} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=gpu-build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin provp \
 && mkdir -p /data /models && chown provp:provp /data
COPY --from=gpu-build /opt/libtorch/lib/ /opt/libtorch/lib/
COPY --from=gpu-build /out/bin/ /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib:${LD_LIBRARY_PATH} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER provp
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051 9090 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
  CMD ["provp", "--address", "127.0.0.1:50051", "health"]
ENTRYPOINT ["provp-server"]
CMD ["--model", "/models/ViT-B-16.pt", "--device", "cuda", "--data-dir", "/data", \
     "--listen", "0.0.0.0:50051", "--metrics-port", "9090", "--http-port", "8080", \
     "--api-keys", "/run/secrets/api_keys"]
