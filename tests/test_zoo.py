"""flow.train.zoo: discovery of family files, model info, seeded construction, checkpoints."""
import pytest
import torch

from flow.train import zoo
from flow.train.trainer import pretrained_model
from flow.core.errors import UserError


def test_lists_tfc_w1a1():
    assert "tfc-w1a1" in zoo.list_models()


def test_model_info_tfc_w1a1():
    info = zoo.model_info("tfc-w1a1")
    assert info["topology"] == [784, 64, 64, 64, 10]
    # 784*64 + 2*64*64 + 64*10 weights, 3 BatchNorm (gamma, beta) of 64, TensorNorm 2
    assert info["params"] == 784 * 64 + 2 * 64 * 64 + 64 * 10 + 3 * 2 * 64 + 2 == 59394
    assert info["input_shape"] == (1, 28, 28)
    assert info["dataset"] == "mnist"
    assert info["precision"] == {"input": 1, "weights": 1, "activations": 1}
    ops = [l["op"] for l in info["layers"]]
    assert ops == ["act_quant"] + ["linear", "batchnorm", "act_quant"] * 3 + ["linear", "tensornorm"]
    assert all(l["weight_bits"] == 1 for l in info["layers"] if l["op"] == "linear")
    assert all(l["bits"] == 1 for l in info["layers"] if l["op"] == "act_quant")
    assert {"epochs", "lr", "batch_size"} <= set(info["defaults"])


def test_unknown_model_names_the_available_ones():
    with pytest.raises(UserError, match="unknown model 'nope'; available: .*tfc-w1a1"):
        zoo.build_model("nope")


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = zoo.build_model("tfc-w1a1", seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = zoo.build_model("tfc-w1a1", seed=7)
    c = zoo.build_model("tfc-w1a1", seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_load_checkpoint_round_trip_and_errors(tmp_path):
    model = zoo.build_model("tfc-w1a1", seed=3)
    ckpt = {"model": "tfc-w1a1", "state_dict": model.state_dict(), "epoch": 2, "optimizer": {},
            "metrics": {"val_acc": 0.5}, "seed": 3}
    torch.save(ckpt, tmp_path / "c.pt")
    loaded, meta = zoo.load_checkpoint(tmp_path / "c.pt")
    assert not loaded.training
    assert meta == {"model": "tfc-w1a1", "epoch": 2, "metrics": {"val_acc": 0.5}, "seed": 3}
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(UserError, match="does not exist"):
        zoo.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="could not be read"):
        zoo.load_checkpoint(tmp_path / "junk.pt")


def test_pretrained_model_without_cache_and_no_training(tmp_path, monkeypatch):
    monkeypatch.setenv("BNNFLOW_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="bnnflow train tfc-w1a1"):
        pretrained_model("tfc-w1a1", train_if_missing=False)


def test_zoo_has_bnn_pynq_variants_and_fixed_point_models():
    names = set(zoo.list_models())
    assert {f"{t}-{p}" for t in ("tfc", "sfc", "cnv") for p in ("w1a1", "w1a2", "w2a2")} <= names
    assert {"lfc-w1a1", "lfc-w1a2", "qfx-resnet", "khot-mlp"} <= names
    assert "lfc-w2a2" not in names  # BNN-PYNQ has none


def test_model_info_widths_and_precision_of_new_families():
    sfc, lfc = zoo.model_info("sfc-w1a2"), zoo.model_info("lfc-w1a1")
    assert sfc["topology"] == [784, 256, 256, 256, 10] and lfc["topology"] == [784, 1024, 1024, 1024, 10]
    assert sfc["precision"] == {"input": 2, "weights": 1, "activations": 2}
    cnv = zoo.model_info("cnv-w2a2")
    assert cnv["input_shape"] == (3, 32, 32) and cnv["dataset"] == "cifar10"
    assert cnv["topology"] == ["64c3", "64c3", "mp2", "128c3", "128c3", "mp2", "256c3", "256c3", 512, 512, 10]
    convs = [l for l in cnv["layers"] if l["op"] == "conv"]
    assert [c["out_channels"] for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c["weight_bits"] == 2 for c in convs)
    res = zoo.model_info("qfx-resnet")
    ops = [l["op"] for l in res["layers"]]
    assert ops.count("add") == 2 and ops.count("conv") == 3 and ops.count("maxpool") == 2
    bn = [l for l in res["layers"] if l["op"] == "batchnorm"][0]
    assert bn["mul_fixed"]["width"] == 8 and len(bn["mul_fixed"]["int_bits"]) == 16
    kh = zoo.model_info("khot-mlp")
    lin = [l for l in kh["layers"] if l["op"] == "linear"]
    assert all(l["weight_fixed"]["k"] == 2 and l["weight_fixed"]["width"] == 8 for l in lin)
    assert kh["topology"] == [784, 256, 256, 10]
    for name in zoo.list_models():
        info = zoo.model_info(name)
        assert info["params"] > 0 and {"input", "weights", "activations"} <= set(info["precision"])
