"""Load a QONNX file, check it is something the flow can read, clean it up and fold
constant weight quantizers. Every failure is a UserError with one sentence."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from flow.core.errors import UserError
from flow.core.quant import MAX_STEPS, bit_width


def load_qonnx(path: Path):
    """Return a cleaned-up qonnx ModelWrapper for the ONNX file at `path`."""
    from google.protobuf.message import DecodeError
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    budget = max_model_bytes()
    if path.stat().st_size > budget:
        raise UserError(f"{path.name} holds {path.stat().st_size} bytes, more than the {budget} bytes allowed "
                        "(BNNFLOW_MAX_EXTERNAL_BYTES)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as exc:
        raise UserError(f"{path.name} is not a readable ONNX model ({type(exc).__name__})") from None
    if not model.graph.node:
        raise UserError(f"{path.name} has an empty graph (no nodes)")
    _load_external(model, path, budget)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid model"
        raise UserError(f"{path.name} is not a valid ONNX model: {first[:200]}") from None
    notes = drop_unread_inputs(model, path.name)
    _check_static_shapes(model, path.name)
    check_finite_parameters(model, path.name)
    try:
        mw = cleanup_model(ModelWrapper(model))
    except Exception as exc:  # qonnx raises many types on odd graphs
        raise UserError(f"{path.name} could not be cleaned up by qonnx ({type(exc).__name__}: {str(exc)[:160]})") from None
    fold_weight_quantizers(mw)
    check_annotated_weights(mw)
    mw.load_notes = notes
    return mw


def drop_unread_inputs(model: onnx.ModelProto, fname: str) -> list[str]:
    """Remove graph inputs no node reads (an exporter may split one quantized input into
    several); return a note for each."""
    inits = {i.name for i in model.graph.initializer}
    read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    notes = []
    for vi in list(model.graph.input):
        if vi.name not in inits and vi.name not in read:
            model.graph.input.remove(vi)
            notes.append(f"{fname}: graph input {vi.name!r} is read by no node; dropped")
    return notes


def check_annotated_weights(mw) -> None:
    """Initializers that carry a QONNX datatype annotation must hold values of that type;
    they then count as quantized weights with scale 1."""
    from qonnx.core.datatype import DataType

    info = mw.weight_quant
    for init in mw.graph.initializer:
        dt = mw.get_tensor_datatype(init.name)
        if dt == DataType["FLOAT32"] or init.name in info:
            continue
        vals = mw.get_initializer(init.name)
        bad = [v for v in np.unique(vals) if not dt.allowed(v)]
        if bad:
            raise UserError(f"tensor {init.name!r} is annotated {dt.name} but holds the value {bad[0]!r}")
        info[init.name] = {"scale": [1.0], "bits": dt.bitwidth(), "bipolar": dt.name == "BIPOLAR"}


# the most bytes a model may bring (its file and its external data together), checked before
# anything is read; BNNFLOW_MAX_EXTERNAL_BYTES overrides it
MAX_MODEL_BYTES = 1 << 30
_PACKED_4BIT = {onnx.TensorProto.INT4, onnx.TensorProto.UINT4} | (
    {onnx.TensorProto.FLOAT4E2M1} if hasattr(onnx.TensorProto, "FLOAT4E2M1") else set())
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
WEIGHT_BITS = (1, 16)  # the integer weight bit widths the engines take
BIAS_BITS = 32         # the widest quantized bias (Brevitas Int32Bias); biases stay float in the segment


def check_finite_parameters(model: onnx.ModelProto, fname: str) -> None:
    """Every float constant (initializer or Constant node) must be finite: a NaN or inf in
    a weight or BatchNorm parameter would otherwise turn silently into some integer."""
    readers: dict[str, str] = {}
    for k, n in enumerate(model.graph.node):
        for i in n.input:
            readers.setdefault(i, n.name or f"{n.op_type} #{k}")
    consts = [(i.name, i) for i in model.graph.initializer]
    consts += [(n.output[0], a.t) for n in model.graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]
    for name, t in consts:
        if t.data_type not in FLOAT_TYPES:
            continue
        arr = onnx.numpy_helper.to_array(t)
        if arr.dtype.kind != "f":  # bfloat16 and the like
            arr = arr.astype(np.float32)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise UserError(f"{fname}: tensor {name!r} (read by node {readers.get(name, '?')!r}) holds "
                            f"{arr[bad].flat[0]}; parameters must be finite numbers")


def _check_weight_range(node, x: np.ndarray, scale) -> None:
    """No weight of a constant Quant node more than MAX_STEPS quantization steps from zero
    (an overflow of the quantizer)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.abs(np.asarray(x, np.float64) / np.asarray(scale, np.float64))
    if steps.size and not np.all(steps <= MAX_STEPS):
        k = int(np.argmax(~(steps <= MAX_STEPS)))
        w = float(np.broadcast_to(x, steps.shape).ravel()[k])
        raise UserError(f"weight quantizer {node.name!r}: the weight {w:g} is {float(steps.ravel()[k]):g} steps of its "
                        "scale from zero, which overflows the quantizer")


def max_model_bytes() -> int:
    text = os.environ.get("BNNFLOW_MAX_EXTERNAL_BYTES")
    if text is None:
        return MAX_MODEL_BYTES
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise UserError(f"BNNFLOW_MAX_EXTERNAL_BYTES must be a number of bytes, got {text!r}")
    return limit


def _tensor_bytes(init: onnx.TensorProto) -> int:
    """The bytes the tensor's dims and data type need."""
    count = 1
    for d in init.dims:
        count *= int(d)
    if init.data_type in _PACKED_4BIT:
        return (count + 1) // 2
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        itemsize = 0
    if init.data_type == onnx.TensorProto.STRING or itemsize == 0:
        raise UserError(f"tensor {init.name!r} keeps data of type {init.data_type} externally; only numeric tensors can")
    return count * itemsize


def _external_entry(init: onnx.TensorProto, folder: Path, fname: str) -> tuple[Path, int, int]:
    """(file, offset, length) of one tensor's external data, checked against the file."""
    info = {e.key: e.value for e in init.external_data}
    loc = info.get("location", "")
    where = f"external data of tensor {init.name!r} in {fname}"
    if not loc or "\0" in loc:
        raise UserError(f"{where} has an empty location or one with a NUL character")
    if Path(loc).is_absolute() or ".." in Path(loc).parts:
        raise UserError(f"{where} points outside the model's folder ({loc!r}); it must be a file next to the model")
    target = (folder / loc).resolve()
    if folder.resolve() not in target.parents:
        raise UserError(f"{where} leads outside the model's folder ({loc!r} resolves to {target})")
    if not target.is_file():
        raise UserError(f"external data file {loc!r} for tensor {init.name!r} is missing next to {fname}")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise UserError(f"{where} has a non-integer offset or length") from None
    size = target.stat().st_size
    need = _tensor_bytes(init)
    length = size - offset if length is None else length
    if offset < 0 or length < 0:
        raise UserError(f"{where} has a negative offset or length")
    if offset + length > size:
        raise UserError(f"{where} declares bytes {offset}..{offset + length}, beyond the end of {loc!r} ({size} bytes)")
    if length != need:
        raise UserError(f"{where} declares {length} bytes, but its shape {list(init.dims)} needs {need}")
    return target, offset, length


def _load_external(model: onnx.ModelProto, path: Path, budget: int) -> None:
    """Read every initializer's external data into the model, after checking each location,
    offset and length against its file and the total against the byte budget."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    inits = [t for t in _get_all_tensors(model) if uses_external_data(t)]  # initializers and attribute tensors
    entries = [_external_entry(i, path.parent, path.name) for i in inits]
    total = sum(e[2] for e in entries)
    own = path.stat().st_size
    if own + total > budget:
        raise UserError(f"{path.name} ({own} bytes) declares {total} bytes of external data, more than the {budget} "
                        "bytes allowed in all (BNNFLOW_MAX_EXTERNAL_BYTES)")
    for init, (target, offset, length) in zip(inits, entries):
        with open(target, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise UserError(f"external data file {target.name} ended early while reading tensor {init.name!r}")
        init.raw_data = data
        del init.external_data[:]
        init.data_location = onnx.TensorProto.DEFAULT


def _check_static_shapes(model: onnx.ModelProto, fname: str) -> None:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise UserError(f"{fname} has {len(inputs)} graph inputs that nodes read; exactly one input is supported")
    dims = inputs[0].type.tensor_type.shape.dim
    if not dims:
        raise UserError(f"{fname}: input {inputs[0].name!r} has no shape; a static shape is required")
    if dims[0].dim_value > 1:
        _single_frame(model, dims[0].dim_value, fname)
    for k, d in enumerate(dims):
        if k == 0 and (d.dim_param or d.dim_value <= 0):
            d.Clear()
            d.dim_value = 1  # a dynamic batch dimension is fine: the accelerator streams frames
        elif d.dim_param or d.dim_value <= 0:
            raise UserError(f"{fname}: input {inputs[0].name!r} has a dynamic dimension {k}; static shapes are required")
    if len(model.graph.output) != 1:
        raise UserError(f"{fname} has {len(model.graph.output)} outputs; exactly one is supported")


def _single_frame(model: onnx.ModelProto, batch: int, fname: str) -> None:
    """A model exported with a static batch of `batch` frames, made a model of one frame: the
    input's and output's batch dimension become 1, and so does the first entry of every constant
    Reshape target that spells the batch out (a flatten exported as Reshape to (batch, -1)); the
    inferred shapes of the intermediate tensors are dropped and inferred again."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits or node.input[0] in inits:
            continue
        target = onnx.numpy_helper.to_array(inits[node.input[1]]).copy()
        if target.ndim == 1 and len(target) and target[0] in (0, -1):
            continue  # keeps the batch axis as it is
        if target.ndim != 1 or not len(target) or target[0] != batch:
            raise UserError(f"{fname} was exported with a batch of {batch} and Reshape {node.name!r} reshapes to "
                            f"{target.tolist()}, which does not keep the batch axis; export with a batch of 1")
        target[0] = 1
        inits[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(target, node.input[1]))
    for vi in (*model.graph.input, *model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and vi.name not in inits:
            dims[0].Clear()
            dims[0].dim_value = 1
    del model.graph.value_info[:]


def _bipolar(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.where(x >= 0, 1.0, -1.0) * scale).astype(np.float32)


def fold_weight_quantizers(mw) -> None:
    """Replace quantizer nodes whose inputs are all constant by their constant result,
    recording each folded tensor's scale and bit width in `mw.weight_quant`."""
    g = mw.graph
    inits = {i.name for i in g.initializer}
    info = getattr(mw, "weight_quant", {})
    biases = {n.input[2] for n in g.node if n.op_type in ("Gemm", "Conv") and len(n.input) > 2 and n.input[2]}
    for node in list(g.node):
        if node.op_type not in ("BipolarQuant", "Quant") or not all(i in inits for i in node.input if i):
            continue
        vals = [mw.get_initializer(i) for i in node.input]
        if node.op_type == "BipolarQuant":
            out = _bipolar(vals[0], vals[1])
            info[node.output[0]] = {"scale": np.asarray(vals[1], dtype=np.float64).ravel().tolist(), "bits": 1,
                                    "bipolar": True}
        else:
            from qonnx.custom_op.general.quant import quant  # deferred: qonnx's custom ops load onnxruntime

            most = BIAS_BITS if node.output[0] in biases else WEIGHT_BITS[1]
            bits = bit_width(vals[3], f"weight quantizer {node.name!r}", most)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            rmode = attrs.get("rounding_mode", b"ROUND")
            rmode = rmode.decode() if isinstance(rmode, bytes) else rmode
            if np.any(np.asarray(vals[2]) != 0):
                raise UserError(f"weight quantizer {node.name!r} has a nonzero zero point; only 0 is supported")
            _check_weight_range(node, vals[0], vals[1])
            out = quant(vals[0], vals[1], vals[2], vals[3], signed=attrs.get("signed", 1),
                        narrow=attrs.get("narrow", 0), rounding_mode=rmode).astype(np.float32)
            info[node.output[0]] = {"scale": np.asarray(vals[1], dtype=np.float64).ravel().tolist(),
                                    "bits": bits, "bipolar": False}
        mw.set_initializer(node.output[0], out)
        g.node.remove(node)
    mw.weight_quant = info
    # drop initializers nothing uses any more
    used = {i for n in g.node for i in n.input}
    for init in list(g.initializer):
        if init.name not in used:
            g.initializer.remove(init)
