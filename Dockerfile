# The build pipeline in a container: the same `make install` the README uses.
#   docker build -t bnnflow .
#   docker run --rm -v "$PWD/out:/work/out" bnnflow build tfc-w1a1 --out /work/out/tfc
# Vivado bitstreams for the Zynq boards: mount an installation at /opt/vivado (its bin/ is on
# PATH below), e.g. -v /tools/Xilinx/Vivado/2024.2:/opt/vivado:ro, and add --board ultra96-v2.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ perl git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# torch==2.13.0 from PyPI is a CUDA build on Linux; the CPU build is enough here.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX}

WORKDIR /opt/bnnflow
COPY . .
RUN make install PYTHON=python3.11 && rm -rf /root/.cache/pip

ENV PATH=/opt/bnnflow/.venv/bin:/opt/vivado/bin:${PATH}
WORKDIR /work
ENTRYPOINT ["bnnflow"]
CMD ["--help"]
