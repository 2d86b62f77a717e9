# The build pipeline in a container: the same `make install` the README uses.
#   docker build -t bnnflow .
#   docker run --rm -v "$PWD/out:/work/out" bnnflow build tfc-w1a1 --out /work/out/tfc
# Zynq bitstreams need Vivado: mount an install and the entry point sources its settings64.sh
# (docker/entrypoint.sh; XILINX_SETTINGS=/path/settings64.sh picks one explicitly):
#   docker run --rm -v /tools/Xilinx:/tools/Xilinx:ro -e XILINXD_LICENSE_FILE \
#       -v "$PWD/out:/work/out" bnnflow build tfc-w1a1 --board ultra96-v2 --out /work/out/tfc
#   (or mount one at /opt/vivado: its bin/ is on PATH below)
FROM python:3.11-slim-bookworm

# VIVADO_LIBS=1 adds the shared libraries a mounted Vivado needs in batch mode.
ARG VIVADO_LIBS=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends make g++ perl git ca-certificates \
 && if [ "$VIVADO_LIBS" = "1" ]; then \
      apt-get install -y --no-install-recommends locales libtinfo6 libx11-6 libxext6 libxrender1 libxtst6 \
        libxi6 libfreetype6 fontconfig; fi \
 && rm -rf /var/lib/apt/lists/*

# torch==2.13.0 from PyPI is a CUDA build on Linux; the CPU build is enough here.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX}

WORKDIR /opt/bnnflow
COPY . .
RUN make install PYTHON=python3.11 && rm -rf /root/.cache/pip

ENV PATH=/opt/bnnflow/.venv/bin:/opt/vivado/bin:${PATH}
WORKDIR /work
# runs `bnnflow "$@"`, after sourcing the Xilinx settings when an install is mounted
ENTRYPOINT ["/opt/bnnflow/docker/entrypoint.sh"]
CMD ["--help"]
