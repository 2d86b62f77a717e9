"""Random networks (flow.fuzz): every drawn network exports, builds, and gives the same integer
outputs in the numpy reference, the RTL simulation and (on some) the C simulation, with the
numpy top-1 equal to PyTorch's on untied inputs; a corrupted reference is caught and leaves a
reproducer; the same seed gives the same specs; bad arguments stop with one sentence.

Cost: networks of one structure share their compiled simulator (per_structure), and all tests
of a run share the simulator cache (tests/conftest.py), so the hook test reuses the binaries of
the 50-network run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flow.fuzz.__main__ import main
from flow.fuzz.run import FuzzConfig, run_fuzz, specs
from flow.fuzz.spec import random_spec, spec_from_dict

pytestmark = pytest.mark.sim

DEFAULT = dict(networks=50, seed=0, images=4, per_structure=10, csim_every=17)


def _run(tmp_path, log=None, **kw):
    lines = []
    summary = run_fuzz(FuzzConfig(out=tmp_path, **kw), log=lines.append if log is None else log)
    return summary, lines


def test_fifty_random_networks_agree_on_every_engine(tmp_path):
    summary, lines = _run(tmp_path, **DEFAULT)
    failed = [ln for ln in lines if ": ok " not in ln]
    assert summary.networks == 50 and summary.mismatches == 0, "\n".join(failed)
    assert summary.line() == "fuzz: 50 networks, 0 mismatches"
    assert sum("csim" in ln for ln in lines) == 3 and all("torch" in ln for ln in lines)
    assert not list(tmp_path.glob("fail-*")) and not list(tmp_path.glob("work-*"))


@pytest.mark.slow
def test_a_thousand_random_networks_agree(tmp_path):
    summary, lines = _run(tmp_path, networks=1000, seed=1, images=8, per_structure=5, csim_every=50)
    assert summary.mismatches == 0, "\n".join(ln for ln in lines if ": ok " not in ln)


def test_a_corrupted_reference_is_caught_and_leaves_a_reproducer(tmp_path, capsys):
    def corrupt(spec, y):
        y = y.copy()
        y.reshape(len(y), -1)[0, 0] += 1
        return y

    summary, lines = _run(tmp_path, networks=2, seed=0, images=3, per_structure=10, csim_every=0,
                          reference_hook=corrupt)
    assert summary.mismatches == 2 and summary.line() == "fuzz: 2 networks, 2 mismatches"
    for i in (0, 1):
        fail = tmp_path / f"fail-{i}"
        assert {"model.onnx", "inputs.npy", "spec.json", "README.md", "outputs-numpy.npy",
                "outputs-rtlsim.npy"} <= {p.name for p in fail.iterdir()}
        assert "rtlsim differs from numpy on 1 of 3 inputs" in (fail / "README.md").read_text()
        assert np.load(fail / "inputs.npy").shape == (3, *random_spec(0, i, 0).shape)
    # the reproducer replays (without the corruption: the network itself is fine)
    assert main(["--spec", str(tmp_path / "fail-0" / "spec.json"), "--out", str(tmp_path / "replay")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "fuzz: 1 networks, 0 mismatches"


def test_the_same_seed_gives_the_same_specs(tmp_path):
    a = [s.to_json() for s in specs(FuzzConfig(30, 7, tmp_path, per_structure=3))]
    assert a == [s.to_json() for s in specs(FuzzConfig(30, 7, tmp_path, per_structure=3))]
    assert a != [s.to_json() for s in specs(FuzzConfig(30, 8, tmp_path, per_structure=3))]
    assert [spec_from_dict(json.loads(t)).to_json() for t in a] == a
    # networks of one structure differ only in their weights
    strip = [{k: v for k, v in json.loads(t).items() if k not in ("index", "weight_seed")} for t in a]
    assert strip[0] == strip[1] == strip[2] != strip[3]
    assert len({json.loads(t)["weight_seed"] for t in a}) == 30
    # --first picks networks out of the same sequence
    assert [s.to_json() for s in specs(FuzzConfig(5, 7, tmp_path, per_structure=3, first=25))] == a[25:]


def test_no_drawn_network_has_a_one_bit_relu(tmp_path):
    """The generator draws multi-bit activations of 2 bits or more: a 1-bit QuantReLU exports as
    BipolarQuant, which the flow refuses (in the 1,000-network run of seed 1, the 21 networks that
    failed among the first 351 had all drawn one)."""
    drawn = [b for s in specs(FuzzConfig(300, 1, tmp_path, per_structure=5)) for b in s.blocks]
    assert any(b.act == "relu" for b in drawn)
    assert not [b for b in drawn if b.act != "bipolar" and b.act_bits < 2]


@pytest.mark.parametrize("argv,words", [
    ([], "give --networks N"),
    (["--networks", "0"], "must be at least 1"),
    (["--networks", "x"], "expected an integer"),
    (["--networks", "2", "--spec", "s.json"], "not both"),
    (["--spec", "missing.json"], "cannot read --spec"),
    (["--networks", "2", "--bogus"], "unrecognized arguments"),
])
def test_bad_arguments_stop_with_one_sentence(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main([a if a != "missing.json" else str(tmp_path / a) for a in argv]))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_a_malformed_spec_file_is_refused(tmp_path, capsys):
    bad = tmp_path / "spec.json"
    bad.write_text(json.dumps({"index": 0, "colour": "red"}))
    assert main(["--spec", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a fuzz spec" in err and len(err.splitlines()) == 1
