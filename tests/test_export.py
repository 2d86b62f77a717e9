"""flow.frontend.export: QONNX export, cleanup and the PyTorch/qonnx agreement check."""
import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from flow.frontend import export as fexport
from flow.frontend.export import ExportCheckError, compare, export_checkpoint, export_qonnx, random_images
from flow.train.zoo import build_model


def _randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
            m.weight.data = sign * (torch.rand(n, generator=g) + 0.2)
            m.bias.data = torch.randn(n, generator=g)
            m.running_mean.data = torch.randn(n, generator=g) * 8
            m.running_var.data = torch.rand(n, generator=g) * 60 + 1
        elif type(m).__name__ == "TensorNorm":
            m.weight.data = torch.tensor([-1.7])
            m.bias.data = torch.tensor([0.3])
            m.running_mean.data = torch.tensor([2.5])
            m.running_var.data = torch.tensor([40.0])
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _randomise(build_model("tfc-w1a1", seed=5), 6)
    path = export_qonnx(model, tmp_path_factory.mktemp("e") / "tfc.onnx")
    return model, path


def test_graph_structure_after_cleanup(exported):
    _, path = exported
    mw = ModelWrapper(str(path))
    ops = [n.op_type for n in mw.graph.node]
    assert ops.count("BipolarQuant") == 8  # 4 weight tensors + input + 3 hidden activations
    assert ops.count("Gemm") == 4 and ops.count("BatchNormalization") == 3
    assert ops[-4:] == ["Sub", "Div", "Mul", "Add"]  # TensorNorm
    for n in mw.get_nodes_by_op_type("BipolarQuant"):
        assert np.array_equal(mw.get_initializer(n.input[1]), np.ones(1, np.float32))
    bn = [mw.get_initializer(n.input[1]) for n in mw.get_nodes_by_op_type("BatchNormalization")]
    assert all((g < 0).any() and (g > 0).any() for g in bn)
    assert mw.get_metadata_prop("bnnflow.model") == "tfc-w1a1"
    assert not [p for p in mw.graph.metadata_props if p.key.startswith("pkg.torch")]
    assert list(mw.get_tensor_shape(mw.graph.input[0].name)) == [1, 1, 28, 28]


def test_qonnx_matches_pytorch_on_100_random_images(exported):
    model, path = exported
    images = random_images(100, (1, 1, 28, 28), seed=42)
    result = compare(model, ModelWrapper(str(path)), images)
    assert result["top1_mismatches"] == 0 and result["logit_mismatches"] == 0
    assert np.array_equal(result["qonnx"].argmax(1), result["reference"].argmax(1))
    # the random BatchNorm makes the logits vary: the check is not vacuous
    assert len(np.unique(result["reference"].argmax(1))) > 1


def test_mismatch_raises_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fexport, "run_qonnx", lambda mw, images, batch=1: np.zeros((len(images), 10), np.float32))
    model = _randomise(build_model("tfc-w1a1", seed=1), 2)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportCheckError, match=r"disagrees with PyTorch on \d+ of 32 images"):
        export_qonnx(model, out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_checkpoint_by_zoo_name(tmp_path):
    out = export_checkpoint("tfc-w1a1", tmp_path / "sub" / "m.onnx", check_images=4)
    assert out.is_file()


# --- every zoo model ------------------------------------------------------------------------

from flow.train.zoo import list_models, model_entry  # noqa: E402


def _trained_like(name, seed=0):
    """A zoo model with randomised norms and a few training-mode batches (binary points set)."""
    model = build_model(name, seed=seed)
    shape = model_entry(name)["input_shape"]
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(8, *shape, generator=g))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.data = torch.randn(n, generator=g) * 3
            m.running_var.data = torch.rand(n, generator=g) * 20 + 1
    return _randomise(model, seed + 1)


def _check_zoo_export(name, tmp_path, n_images):
    model = _trained_like(name)
    shape = (1, *model_entry(name)["input_shape"])
    path = export_qonnx(model, tmp_path / f"{name}.onnx", input_shape=shape, check_images=0)
    result = compare(model, ModelWrapper(str(path)), random_images(n_images, shape, seed=7))
    assert result["top1_mismatches"] == 0 and result["logit_mismatches"] == 0, name
    return ModelWrapper(str(path))


@pytest.mark.parametrize("name", ["tfc-w2a2", "khot-mlp", "qfx-resnet", "cnv-w1a2"])
def test_zoo_models_export_and_match_qonnx(tmp_path, name):
    _check_zoo_export(name, tmp_path, 12)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_matches_qonnx_on_200_inputs(tmp_path, name):
    _check_zoo_export(name, tmp_path, 200)


def test_fixed_point_export_forms(tmp_path):
    """khot-mlp: weights, BatchNorm constants and activations as Quant with power-of-two scales."""
    mw = _check_zoo_export("khot-mlp", tmp_path, 2)
    from flow.ops.semantics import khot_terms

    ops = [n.op_type for n in mw.graph.node]
    assert ops.count("Gemm") == 3 and ops.count("Quant") == 3 + 4 + 3  # weights, BN mul/add, acts + input
    assert "BatchNormalization" not in ops
    for q in mw.get_nodes_by_op_type("Quant"):
        scale = mw.get_initializer(q.input[1])
        assert np.array_equal(np.exp2(np.round(np.log2(scale))), scale)  # powers of two
        assert float(mw.get_initializer(q.input[2])) == 0.0
        w = mw.get_initializer(q.input[0])
        if w is not None and w.ndim == 2 and w.shape[0] in (256, 10):  # a weight matrix
            ints = np.round(w / scale).astype(np.int64)
            assert np.array_equal(ints * scale, w)
            khot_terms(ints, 2)  # at most 2 terms each, or it raises
