"""flow.export: QONNX export, cleanup and the PyTorch/qonnx agreement check."""
import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from flow import export as fexport
from flow.export import ExportCheckError, compare, export_checkpoint, export_qonnx, random_images
from flow.zoo import build_model


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
