#!/bin/bash
# Entry point of the bnnflow image: when a Xilinx install is mounted, source its settings so
# that vivado (and vitis_hls) are on PATH for `bnnflow build --board <zynq board>`; then run
# bnnflow with the container's arguments.
#
#   docker run --rm -v /tools/Xilinx:/tools/Xilinx:ro -v "$PWD/out:/work/out" bnnflow \
#       build tfc-w1a1 --board ultra96-v2 --out /work/out/tfc
#
# XILINX_SETTINGS names the settings file to source; without it the last (newest) of
# /tools/Xilinx/Vivado/<version>/settings64.sh and /tools/Xilinx/<version>/Vivado/settings64.sh
# is used, and nothing is sourced when there is none.
set -euo pipefail

settings="${XILINX_SETTINGS:-}"
if [ -z "$settings" ]; then
    for candidate in /tools/Xilinx/Vivado/*/settings64.sh /tools/Xilinx/*/Vivado/settings64.sh; do
        if [ -f "$candidate" ]; then
            settings="$candidate"
        fi
    done
fi
if [ -n "$settings" ]; then
    if [ ! -f "$settings" ]; then
        echo "bnnflow: error: XILINX_SETTINGS=$settings is not a file; mount the Xilinx install (e.g. -v /tools/Xilinx:/tools/Xilinx) or unset it." >&2
        exit 2
    fi
    # the vendor script reads unset variables
    set +u
    # shellcheck disable=SC1090
    source "$settings" >/dev/null
    set -u
fi
exec bnnflow "$@"
