"""BUILD/deploy/: the driver's sim backend equals `bnnflow run --engine rtlsim` and PyTorch, its
PYNQ buffers hold exactly the beats the simulator receives (zero-padded to the AXI width), and
its PYNQ and UART code paths pass mypy --strict against typed stubs of pynq and pyserial."""
from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from flow.pipeline.build import BuildConfig, build, load_build
from flow.cli import main

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parents[1]
T10K = ROOT.parent / "shared" / "data" / "mnist-t10k"
STUBS = Path(__file__).resolve().parent / "stubs"


@pytest.fixture(scope="module")
def zoo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "tfc"
    report = build(BuildConfig(model="tfc-w1a1", out=out, verify_images=20, progress=False))
    assert report["status"] == "complete"
    return out, report


def _load_driver(deploy_dir: Path):
    """Import deploy/driver.py as its own module, the way a board imports it."""
    spec = importlib.util.spec_from_file_location("bnnflow_deploy_driver", deploy_dir / "driver.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


def _images(n: int, source: str) -> np.ndarray:
    from flow.train.data import load_dataset

    return load_dataset(source, split="test")[0][:n]


def test_deploy_dir_without_board(zoo_build):
    out, report = zoo_build
    d = out / "deploy"
    assert sorted(p.name for p in d.iterdir()) == ["bnnflow.ipynb", "driver.py", "io.json", "samples.npz"]
    assert report["deploy"]["bitstream"] is None and report["deploy"]["files"] == sorted(p.name for p in d.iterdir())
    io = json.loads((d / "io.json").read_text())
    assert io["design_hash"] == report["design_hash"]
    assert io["input_shape"] == [1, 28, 28] and io["wire_order"] == "NHWC" and io["classes"] == 10
    assert io["beat_bytes"]["in"] == -(-io["input_stream"]["lanes"] * io["input_stream"]["elem_bits"] // 8)
    assert io["input_stream"]["beats"] * io["input_stream"]["lanes"] == 784
    assert io["logits"] == {**io["logits"], "scale": report["output"]["scale"], "bias": report["output"]["bias"]}
    assert (d / "driver.py").read_bytes() == (ROOT / "flow" / "deploy" / "driver.py").read_bytes()
    nb = json.loads((d / "bnnflow.ipynb").read_text())
    assert all(c.get("outputs", []) == [] for c in nb["cells"])
    # numpy only at import: no bnnflow, torch, pynq or pyserial
    probe = ("import sys, driver; heavy = {'flow', 'torch', 'pynq', 'serial'} & set(sys.modules); "
             "assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", probe], cwd=d, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_sim_bytes_equal_pynq_bytes(zoo_build):
    """The sim backend streams pack_images rows; the PYNQ MM2S buffer is the same rows zero-padded
    to axi_bytes; both are flow.core.wire.pack_beats of the wire-order pixels."""
    from flow.sim.execute import to_wire
    from flow.core.wire import beat_bytes, pack_beats
    from flow.ir.reference import design_streams

    out, _report = zoo_build
    drv = _load_driver(out / "deploy")
    acc = drv.Accelerator(out, backend="sim")
    images = _images(24, str(T10K)) if T10K.is_dir() else _images(5000, "mnist-subset")[::200]
    sent = []
    run = acc.backend.sim.run
    acc.backend.sim.run = lambda beats, **kw: (sent.append(np.array(beats)), run(beats, **kw))[1]
    acc.backend.max_batch = 10  # three batches: 10, 10, 4
    top1 = acc.predict(images)
    sim_bytes = np.concatenate(sent)

    graph = load_build(out)
    s_in, _ = design_streams(graph, logits=False)
    ref = pack_beats(to_wire(graph, images), s_in.lanes, s_in.bits)
    assert np.array_equal(sim_bytes, ref)
    assert np.array_equal(drv.pack_images(acc.spec, images), ref)

    axi = drv.pack_axi(acc.spec, images)
    width = drv.axi_bytes(s_in.width)
    assert width >= beat_bytes(s_in.width) and width & (width - 1) == 0 and width < 2 * beat_bytes(s_in.width)
    assert axi.shape == (len(images) * s_in.beats, width) and axi.dtype == np.uint8
    assert np.array_equal(axi[:, :beat_bytes(s_in.width)], sim_bytes)
    assert not axi[:, beat_bytes(s_in.width):].any()
    # an S2MM buffer (rows of axi_bytes(out_bits)) decodes to the same classes
    out_rows = drv.pad_rows(top1.astype(np.uint8)[:, None], drv.axi_bytes(acc.spec.out_bits))
    assert np.array_equal(drv.decode_outputs(acc.spec, out_rows, len(images)), top1[:, None])


def test_driver_wire_format_equals_the_core_one():
    """The stand-alone driver keeps its own copy of the wire format; on random elements of every
    width from 1 to 64 bits (signed: up to 62), 1 to 9 lanes, it packs the same bytes as
    flow.core.wire and unpacks them to the same integers."""
    from flow.core import wire
    from flow.deploy import driver

    rng = np.random.default_rng(14)
    for bits in range(1, 65):
        assert driver.beat_bytes(bits) == wire.beat_bytes(bits) and driver.axi_bytes(bits) == wire.axi_bytes(bits)
        for lanes in (1, 2, 3, 5, 9):
            for signed in (False, True)[:1 if bits > 62 else 2]:  # both copies: signed elements of up to 62 bits
                lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, min((1 << bits) - 1, (1 << 63) - 1))
                frames, per = int(rng.integers(1, 5)), lanes * int(rng.integers(1, 4))
                vals = rng.integers(lo, hi, (frames, per), dtype=np.int64, endpoint=True)
                vals[0, :2] = (lo, hi)[:per]  # both ends of the range
                mine, core = driver.pack_elements(vals, lanes, bits), wire.pack_beats(vals, lanes, bits)
                assert mine.dtype == core.dtype == np.uint8 and np.array_equal(mine, core), (bits, lanes, signed)
                back = driver.unpack_elements(mine, lanes, bits, signed)
                assert np.array_equal(back, wire.unpack_beats(core, lanes, bits, signed)), (bits, lanes, signed)
                assert np.array_equal(back.reshape(frames, per), vals), (bits, lanes, signed)


def test_axi_widths():
    from flow.deploy.driver import axi_bytes, beat_bytes

    assert [axi_bytes(b) for b in (1, 8, 9, 16, 17, 32, 33, 392, 513)] == [1, 1, 2, 2, 4, 4, 8, 64, 128]
    assert [beat_bytes(b) for b in (1, 8, 9, 392)] == [1, 1, 2, 49]


def _acceptance(build_dir: Path, images: np.ndarray, tmp_path: Path) -> None:
    """Accelerator(sim).predict == `bnnflow run --engine rtlsim` == PyTorch top-1, exactly."""
    from flow.deploy.driver import Accelerator
    from flow.sim.verify import torch_logits
    from flow.train.trainer import pretrained_model

    with Accelerator(build_dir, backend="sim") as acc:
        drv = acc.predict(images)
    np.save(tmp_path / "x.npy", images)
    assert main(["run", str(build_dir), "--input", str(tmp_path / "x.npy"), "--engine", "rtlsim",
                 "--output", str(tmp_path / "y.npy")]) == 0
    cli = np.load(tmp_path / "y.npy")
    graph = load_build(build_dir)
    torch_top1 = torch_logits(pretrained_model("tfc-w1a1"), images, graph.meta("input")["scale"]).argmax(axis=1)
    assert drv.dtype == np.int64 and drv.shape == (len(images),)
    mismatches = {"driver_vs_rtlsim": int(np.sum(drv != cli)), "driver_vs_pytorch": int(np.sum(drv != torch_top1))}
    assert mismatches == {"driver_vs_rtlsim": 0, "driver_vs_pytorch": 0}


def test_acceptance_100_images(zoo_build, tmp_path):
    images = _images(100, str(T10K)) if T10K.is_dir() else _images(5000, "mnist-subset")[::50]
    _acceptance(zoo_build[0], images, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not T10K.is_dir(), reason=f"held-out MNIST test set not at {T10K}")
def test_acceptance_500_held_out_images(zoo_build, tmp_path):
    _acceptance(zoo_build[0], _images(500, str(T10K)), tmp_path)


def test_verify_and_throughput(zoo_build):
    from flow.deploy.driver import Accelerator

    acc = Accelerator(zoo_build[0] / "deploy", backend="sim")
    assert acc.verify() == {**acc.verify(), "images": 16, "mismatches": 0, "passed": True}
    images, expected = acc.samples()
    wrong = (expected + 1) % 10
    assert acc.verify((images, wrong))["mismatches"] == 16
    assert acc.predict(images[0]).shape == (1,)  # one image without a batch axis
    assert acc.throughput_test(n=50) > 0


def test_deploy_notebook_runs(zoo_build):
    """deploy/bnnflow.ipynb, executed in the deploy folder; without pynq it takes the sim backend."""
    import nbformat
    from nbclient import NotebookClient

    d = zoo_build[0] / "deploy"
    nb = nbformat.read(d / "bnnflow.ipynb", as_version=4)
    nbformat.validate(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(d)}}).execute()
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "'sim'" in text and "'mismatches': 0" in text and "images/s on the sim backend" in text


def test_driver_refuses_bad_use(zoo_build):
    from flow.deploy.driver import Accelerator

    out = zoo_build[0]
    with pytest.raises(ValueError, match="unknown backend 'fpga'; supported: pynq, sim, uart"):
        Accelerator(out, backend="fpga")
    with pytest.raises(FileNotFoundError, match="holds no bitstream"):
        Accelerator(out, backend="pynq")
    with pytest.raises(ValueError, match="serial port"):
        Accelerator(out, backend="uart")
    with pytest.raises(FileNotFoundError, match="neither a bnnflow deploy directory"):
        Accelerator(out / "rtl", backend="sim")
    acc = Accelerator(out, backend="sim")
    with pytest.raises(ValueError, match="must be uint8"):
        acc.predict(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"shaped \(N, 1, 28, 28\)"):
        acc.predict(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="top-1 classes only"):
        acc.logits(acc.samples()[0])
    with pytest.raises(ValueError, match="empty batch"):
        acc.predict(np.zeros((0, 1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        acc.throughput_test(n=0)
    images, top1 = acc.samples()
    with pytest.raises(ValueError, match="expected top-1 must be integers shaped"):
        acc.verify((images, top1[:-1]))
    with pytest.raises(ValueError, match="max_batch must be a positive integer, got -1"):
        Accelerator(out, backend="sim", max_batch=-1)  # it returned [] for every batch


def test_uart_backend_speaks_the_uart_contract(zoo_build):
    """The uart backend through a pyserial socket:// port, to a server that hands each whole
    image it receives (in_beats beats of beat_bytes(in_bits) bytes) to the build's Verilator
    model and writes back its output beats (beat_bytes(out_bits) bytes each)."""
    from flow.deploy.driver import Accelerator, pack_images
    from flow.sim.execute import execute_numpy
    from flow.core.wire import beat_bytes
    from flow.sim.simulate import compiled_sim

    out = zoo_build[0]
    graph = load_build(out)
    sim, s_in, _s_out = compiled_sim(graph, out)
    frame = s_in.beats * beat_bytes(s_in.width)
    received = bytearray()
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with conn:
            pending = b""
            while chunk := conn.recv(1 << 16):
                pending += chunk
                whole = len(pending) // frame * frame
                if whole:
                    received.extend(pending[:whole])
                    beats = np.frombuffer(pending[:whole], np.uint8).reshape(-1, beat_bytes(s_in.width))
                    conn.sendall(sim.run(beats)[0].tobytes())
                    pending = pending[whole:]

    threading.Thread(target=serve, daemon=True).start()
    images = _images(5000, "mnist-subset")[::250]  # the subset is sorted by class: 2 of each
    port = f"socket://127.0.0.1:{server.getsockname()[1]}"
    with Accelerator(out, backend="uart", port=port, baud=115200, max_batch=8) as acc:
        top1 = acc.predict(images)
    server.close()
    assert np.array_equal(top1, execute_numpy(graph, images)) and len(set(top1.tolist())) > 5
    assert bytes(received) == pack_images(acc.spec, images).tobytes()


def test_board_outputs_are_shipped(zoo_build, tmp_path):
    """When the board step names a bitstream and a hardware handoff, deploy/ carries both."""
    from flow.deploy.bundle import write_deploy

    out = zoo_build[0]
    graph = load_build(out)
    board = tmp_path / "board" / "ultra96-v2"
    board.mkdir(parents=True)
    (board / "bnnflow.bit").write_bytes(b"bitstream bytes from the board step")
    (board / "design_1.hwh").write_text("<hwh/>")  # renamed to the bitstream's stem, where pynq looks
    bb = {"board": "ultra96-v2", "toolchain": "vivado", "status": "built", "reason": None,
          "bitstream": "board/ultra96-v2/bnnflow.bit", "hwh": "board/ultra96-v2/design_1.hwh",
          "project": "board/ultra96-v2", "gate": {}}
    rec = write_deploy(graph, tmp_path, "ultra96-v2", bb)
    d = tmp_path / "deploy"
    assert rec["bitstream"] == "bnnflow.bit" and rec["hwh"] == "bnnflow.hwh"
    assert (d / "bnnflow.bit").read_bytes() == (board / "bnnflow.bit").read_bytes()
    assert (d / "bnnflow.hwh").read_text() == "<hwh/>"
    io = json.loads((d / "io.json").read_text())
    assert (io["board"], io["bitstream"], io["hwh"]) == ("ultra96-v2", "bnnflow.bit", "bnnflow.hwh")
    first = {p.name: p.read_bytes() for p in d.iterdir()}
    write_deploy(graph, tmp_path, "ultra96-v2", bb)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == first  # same inputs, same bytes
    unbuilt = {**bb, "status": "not_built", "reason": "vivado not found", "bitstream": None, "hwh": None}
    assert write_deploy(graph, tmp_path, "ultra96-v2", unbuilt)["files"] == [
        "bnnflow.ipynb", "driver.py", "io.json", "samples.npz"]


# ---------------------------------------------------------------------------------------
# mypy over the driver as shipped, with typed stubs of pynq and pyserial (tests/stubs)

MYPY_INI = """[mypy]
strict = True
mypy_path = {stubs}
cache_dir = {cache}
[mypy-flow.*]
follow_imports = skip
ignore_missing_imports = True
"""


def _mypy(driver: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    ini = tmp_path / "mypy.ini"
    ini.write_text(MYPY_INI.format(stubs=STUBS, cache=tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini), str(driver)],
                          capture_output=True, text=True, cwd=tmp_path)


def test_driver_type_checks(tmp_path):
    d = tmp_path / "deploy"
    d.mkdir()
    shutil.copyfile(ROOT / "flow" / "deploy" / "driver.py", d / "driver.py")
    res = _mypy(d / "driver.py", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


MISTAKES = [  # (line in the PYNQ or UART code, the same line with a mistake, what mypy says)
    ("self.dma.sendchannel.wait()", "self.dma.sendchannel.wiat()", "has no attribute \"wiat\""),
    ("nbytes=rows.nbytes)", "nbytes=str(rows.nbytes))", "incompatible type \"str\""),
    ("src.flush()", "src.flush(True)", "Too many arguments"),
    ("self.port.write(pack_images(self.spec, images).tobytes())", "self.port.write(pack_images(self.spec, images))",
     "incompatible type"),
]


def test_pynq_and_uart_paths_are_checked(tmp_path):
    """A mistake planted in the PYNQ or UART code is caught: those paths are typed, not Any."""
    text = (ROOT / "flow" / "deploy" / "driver.py").read_text()
    files = []
    for i, (good, bad, _complaint) in enumerate(MISTAKES):
        assert text.count(good) == 1, good
        files.append(tmp_path / f"driver_{i}.py")
        files[-1].write_text(text.replace(good, bad))
    ini = tmp_path / "mypy.ini"
    ini.write_text(MYPY_INI.format(stubs=STUBS, cache=tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini), *map(str, files)],
                         capture_output=True, text=True, cwd=tmp_path)
    for f, (_good, _bad, complaint) in zip(files, MISTAKES):
        errors = [line for line in res.stdout.splitlines() if line.startswith(f.name + ":")]
        assert len(errors) == 1 and complaint in errors[0], res.stdout
