"""The Vivado flow for Zynq boards: the accelerator packaged as IP, a block design with the
processing system, AXI DMA (MM2S + S2MM, no scatter-gather), the accelerator, clocks and
resets, then implementation, write_bitstream and the .hwh hand-off file PYNQ reads.

BUILD/board/<board>/ gets src/ (the RTL and memory files), package_ip.tcl, build.tcl and
README.txt. With `vivado` on PATH the build runs; otherwise the project stays generated and
the record says how to run it. Scripts name files relative to their own folder, so the
project can be copied to a machine with Vivado.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from flow.boards import shell_rtl as br
from flow.core.assets import asset_path
from flow.boards.catalog import Board, seal_project, templates
from flow.core.errors import UserError
from flow.boards.synth import copy_sources

IP_VLNV = "bnnflow.org:bnnflow:bnnflow_accel:1.0"
DMA_MAX_TDATA_BYTES = 128   # AXI DMA streams carry at most 1024 bits

# processing-system pin and port names, per PS IP
PS: dict[str, dict] = {
    "zynq_ultra_ps_e": {
        "clk": "pl_clk0", "resetn": "pl_resetn0", "master": "M_AXI_HPM0_FPD", "master_clk": "maxihpm0_fpd_aclk",
        "slave": "S_AXI_HP0_FPD", "slave_clk": "saxihp0_fpd_aclk",
        "config": {"PSU__USE__M_AXI_GP0": "1", "PSU__USE__M_AXI_GP1": "0", "PSU__USE__M_AXI_GP2": "0",
                   "PSU__USE__S_AXI_GP2": "1", "PSU__FPGA_PL0_ENABLE": "1",
                   "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": "{mhz}"},
        "automation": "xilinx.com:bd_rule:zynq_ultra_ps_e",
        "automation_config": "",
    },
    "processing_system7": {
        "clk": "FCLK_CLK0", "resetn": "FCLK_RESET0_N", "master": "M_AXI_GP0", "master_clk": "M_AXI_GP0_ACLK",
        "slave": "S_AXI_HP0", "slave_clk": "S_AXI_HP0_ACLK",
        "config": {"PCW_USE_M_AXI_GP0": "1", "PCW_USE_S_AXI_HP0": "1", "PCW_EN_CLK0_PORT": "1",
                   "PCW_FPGA0_PERIPHERAL_FREQMHZ": "{mhz}"},
        "automation": "xilinx.com:bd_rule:processing_system7",
        "automation_config": 'make_external "FIXED_IO, DDR"',
    },
}


def package_ip_params(board: Board, sources: list[str], mems: list[str]) -> dict:
    vendor, library, name, version = IP_VLNV.split(":")
    return {"board": board.name, "part": board.part, "ip_top": br.AXIS_TOP,
            "ip": {"vendor": vendor, "library": library, "name": name, "version": version},
            "sources": [f"src/{f}" for f in sources], "mems": [f"src/{f}" for f in mems]}


def build_params(board: Board, shape: br.WireShape, clock_mhz: float) -> dict:
    """What build.tcl.j2 needs: the PS and its ports, the DMA widths, the clock."""
    ps_ip = board.shell["ps"]
    ps = PS[ps_ip]
    ai, ao = 8 * br.axi_bytes(shape.in_bits), 8 * br.axi_bytes(shape.out_bits)
    return {"board": board.name, "part": board.part, "board_part": board.shell["board_part"],
            "clock_mhz": f"{clock_mhz:g}", "ps_ip": ps_ip, "ps": ps,
            "ps_config": [(k, v.format(mhz=f"{clock_mhz:g}")) for k, v in ps["config"].items()],
            "axis_in_bits": ai, "axis_out_bits": ao, "mm_in_bits": max(32, ai), "mm_out_bits": max(32, ao),
            "ip_vlnv": IP_VLNV}


def shell_files(graph) -> dict[str, bytes]:
    """The files of the AXI-Stream shell: library files and the rendered IP top."""
    files = {name: (asset_path("rtl") / "shell" / name).read_bytes() for name in br.AXIS_FILES}
    files[f"{br.AXIS_TOP}.sv"] = br.render_axis_top(br.WireShape.of(graph)).encode()
    return files


def how_to_run(proj_rel: Path) -> str:
    return f"cd {proj_rel} && vivado -mode batch -source build.tcl"


def write_project(graph, build_dir: Path, board: Board, clock_mhz: float) -> Path:
    """Write BUILD/board/<board>/ (sources, TCL, README); return it."""
    shape = br.WireShape.of(graph)
    for what, bits in (("input", shape.in_bits), ("output", shape.out_bits)):
        if br.axi_bytes(bits) > DMA_MAX_TDATA_BYTES:
            raise UserError(f"the {what} beat of {bits} bits needs a {br.axi_bytes(bits)}-byte AXI stream; AXI DMA "
                            f"carries at most {DMA_MAX_TDATA_BYTES} bytes per beat (fold the first/last layer "
                            "to fewer lanes)")
    proj = Path(build_dir) / "board" / board.name
    if proj.exists():
        shutil.rmtree(proj)
    src = proj / "src"
    src.mkdir(parents=True)
    copy_sources(Path(build_dir) / "rtl", src)  # Vivado maps every memory style: the top stays as generated
    for name, data in shell_files(graph).items():
        (src / name).write_bytes(data)
    sources = sorted(p.name for p in src.glob("*.sv"))
    mems = sorted(p.name for p in src.glob("*.mem"))
    env = templates()
    (proj / "package_ip.tcl").write_text(
        env.get_template("package_ip.tcl.j2").render(**package_ip_params(board, sources, mems)), newline="\n")
    (proj / "build.tcl").write_text(
        env.get_template("build.tcl.j2").render(**build_params(board, shape, clock_mhz)), newline="\n")
    p = shape.axis_params()
    (proj / "README.txt").write_text(
        f"bnnflow Vivado project for {board.name} ({board.part}).\n\n"
        f"Build the bitstream (Vivado on PATH):  {how_to_run(Path('board') / board.name)}\n"
        "  (run from the build directory; or `vivado -mode batch -source build.tcl` in this folder)\n"
        "Outputs: bnnflow.bit and bnnflow.hwh here, utilization.rpt and timing.rpt.\n\n"
        f"Accelerator IP {IP_VLNV}: AXI-Stream in {p['AXI_IN_BITS']} bits ({p['IN_BEATS']} beats per image, "
        f"data in the low {p['IN_BITS']} bits), out {p['AXI_OUT_BITS']} bits ({p['OUT_BEATS']} beats per image, "
        f"data in the low {p['OUT_BITS']} bits, the rest zero). m_axis_tlast ends the frame that held the "
        "input TLAST, so one S2MM transfer returns one MM2S transfer's batch.\n")
    return proj


def build_bitstream(graph, build_dir: Path, board: Board, clock_mhz: float, log=lambda m: None,
                    gate: dict | None = None) -> dict:
    """Write the project, check its sources against the verified ones in `gate`
    (flow.boards.catalog.seal_project); run Vivado on it when it is on PATH. Return the board_build
    record."""
    build_dir = Path(build_dir)
    proj = write_project(graph, build_dir, board, clock_mhz)
    rel = proj.relative_to(build_dir)
    rec = {"toolchain": "vivado", "status": "not_built", "reason": None, "bitstream": None, "hwh": None,
           "project": str(rel), "clock_mhz": clock_mhz, "fmax_mhz": None,
           "sealed": seal_project(gate or {}, build_dir, proj / "src", shell_files(graph), None,
                                  [proj / "package_ip.tcl", proj / "build.tcl"])}
    vivado = shutil.which("vivado")
    if vivado is None:
        rec["reason"] = f"vivado is not on PATH; to build the bitstream run: {how_to_run(rel)} (in {build_dir})"
        log(f"{board.name}: Vivado project written; {rec['reason']}")
        return rec
    log(f"{board.name}: running Vivado (log: {rel / 'vivado.log'})")
    res = subprocess.run([vivado, "-mode", "batch", "-nojournal", "-log", "vivado.log", "-source", "build.tcl"],
                         cwd=proj, capture_output=True, text=True)
    if res.returncode != 0 or not (proj / "bnnflow.bit").is_file():
        tail = " | ".join((res.stdout + res.stderr).strip().splitlines()[-5:])
        rec["reason"] = f"Vivado failed (exit {res.returncode}; log {rel / 'vivado.log'}): {tail}"[:2000]
        return rec
    rec.update(status="built", bitstream=str(rel / "bnnflow.bit"), hwh=str(rel / "bnnflow.hwh"))
    return rec
