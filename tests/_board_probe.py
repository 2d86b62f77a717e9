"""Drive the board shells of rtl/shell/ through the Verilator harness of flow.sim.rtlsim."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from flow.boards import shell_rtl as br
from flow.sim.execute import to_wire
from flow.sim.rtlsim import RTLSim
from flow.core.wire import beat_bytes, pack_beats
from flow.boards.uart_host import decode_reply, image_bytes, reply_bytes_per_image


def _sources(build_dir: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted((Path(build_dir) / "rtl").iterdir()):
        if f.suffix in (".sv", ".mem"):
            shutil.copyfile(f, dst / f.name)


def axis_probe(graph, build_dir: Path, work: Path, images: np.ndarray, tlast_at: list[int], fill: int = 0xA5,
               stall_seed: int | None = None, cache: Path | None = None):
    """Stream the images through bnnflow_accel with TLAST on the given input beat indices and
    the padding bytes set to `fill` (random valid/ready stalls with a seed); return (output rows
    of axi_bytes(out_bits), out tlast bits)."""
    shape = br.WireShape.of(graph)
    d = work / "axis"
    _sources(build_dir, d)
    br.copy_shell(br.AXIS_FILES, d)
    (d / f"{br.AXIS_TOP}.sv").write_text(br.render_axis_top(shape))
    (d / f"{br.PROBE_TOP}.sv").write_text(br.render_axis_probe(shape))
    s_in = to_wire(graph, images)
    from flow.ir.reference import design_streams

    si, _so = design_streams(graph, False)
    beats = pack_beats(s_in, si.lanes, si.bits)
    ai, ao = br.axi_bytes(shape.in_bits), br.axi_bytes(shape.out_bits)
    rows = np.full((len(beats), ai + 1), fill, dtype=np.uint8)
    rows[:, : beats.shape[1]] = beats
    rows[:, ai] = 0
    rows[tlast_at, ai] = 1
    sim = RTLSim(d, br.PROBE_TOP, 8 * ai + 1, 8 * ao + 1, shape.out_beats, shape.in_beats, cache or work / "sim")
    out, _stats = sim.run(rows, stall_seed=stall_seed)
    return out[:, :ao], out[:, ao] & 1


def uart_probe(graph, build_dir: Path, work: Path, images: np.ndarray, clks_per_bit: int = 4):
    """Send the images as UART bytes (flow.boards.uart_host's wire format) through bnnflow_uart_top;
    return the classes decoded from the bytes it sent back."""
    shape = br.WireShape.of(graph)
    d = work / "uart"
    _sources(build_dir, d)
    br.copy_shell(br.UART_FILES, d)
    (d / f"{br.UART_TOP}.sv").write_text(br.render_uart_top(shape, clks_per_bit))
    (d / f"{br.PROBE_TOP}.sv").write_text(br.render_uart_probe(clks_per_bit))
    data = np.frombuffer(image_bytes(graph, images), dtype=np.uint8).reshape(-1, 1)
    in_bpf = shape.in_beats * beat_bytes(shape.in_bits)
    sim = RTLSim(d, br.PROBE_TOP, 8, 8, reply_bytes_per_image(graph), in_bpf, work / "sim")
    out, stats = sim.run(data, watchdog=200 * in_bpf * clks_per_bit)
    return decode_reply(graph, out.tobytes(), len(images)), stats


