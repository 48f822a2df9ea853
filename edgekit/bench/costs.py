"""Per-layer cost: FLOPs / MACs, parameter bytes and activation bytes, from an ONNX graph (with shape inference)
or from the shapes an ONNX Runtime trace or a TFLite interpreter reports for the nodes that actually ran.

Conventions: one MAC = 2 operations (multiply + add); elementwise ops count one operation per output element
(normalization two); data-movement ops (Reshape, Transpose, Flatten, layout reorders...) count none. Quantized ops
(QLinear*, *Integer, int8 tensors) are "int8" work, the others "float" work: the roofline picks the peak to match.
"""

from __future__ import annotations

from math import prod

DTYPE_BYTES = {"float": 4, "float32": 4, "float16": 2, "bfloat16": 2, "double": 8, "int8": 1, "uint8": 1, "int16": 2,
               "int32": 4, "int64": 8, "bool": 1, "uint16": 2, "uint32": 4}
INT8_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "QGemm",
            "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearGlobalAveragePool",
            "QLinearAveragePool", "QLinearConcat", "DynamicQuantizeMatMul", "QuantizeLinear", "DequantizeLinear",
            "DynamicQuantizeLinear"}
CONV_OPS = {"Conv", "FusedConv", "NhwcConv", "NhwcFusedConv", "ConvInteger", "QLinearConv"}
MATMUL_OPS = {"MatMul", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}
GEMM_OPS = {"Gemm", "FusedGemm", "QGemm"}
MOVE_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Shape", "Gather", "Concat", "Slice",
            "Split", "ReorderInput", "ReorderOutput", "Cast", "Expand", "Constant", "MemcpyToHost", "MemcpyFromHost"}
NORM2_OPS = {"BatchNormalization", "LayerNormalization", "InstanceNormalization", "Softmax", "LogSoftmax"}


def _weight_index(op: str) -> int:
    return 3 if op.startswith("QLinear") else 1


def node_cost(op: str, inputs: list[list[int] | None], outputs: list[list[int] | None]) -> dict:
    """FLOPs and MACs of one node from its input/output shapes (ONNX layout: Conv weights [Cout, Cin/g, *k])."""
    out_elems = prod(outputs[0]) if outputs and outputs[0] is not None else 0
    macs = 0
    weight = inputs[_weight_index(op)] if op in CONV_OPS and len(inputs) > _weight_index(op) else None
    if weight:
        macs = out_elems * prod(weight[1:])
    elif op == "ConvTranspose" and len(inputs) > 1 and inputs[0] and inputs[1]:
        macs = prod(inputs[0]) * prod(inputs[1][1:])
    elif op in MATMUL_OPS and inputs and inputs[0]:
        macs = out_elems * inputs[0][-1]
    elif op in GEMM_OPS and inputs and inputs[0] and outputs and outputs[0]:
        m = outputs[0][0] if len(outputs[0]) > 1 else 1
        macs = out_elems * (prod(inputs[0]) // max(1, m))
    if macs:
        return {"flops": 2 * macs, "macs": macs}
    if op in MOVE_OPS:
        return {"flops": 0, "macs": 0}
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "ReduceMax"):
        return {"flops": prod(inputs[0]) if inputs and inputs[0] else out_elems, "macs": 0}
    return {"flops": (2 if op in NORM2_OPS else 1) * out_elems, "macs": 0}


def is_int8(op: str, dtypes: list[str]) -> bool:
    return op in INT8_OPS or any(d in ("int8", "uint8") for d in dtypes[:2])


def trace_node_cost(node: dict) -> dict:
    """Cost of a node record from the agent's ORT trace (shapes as [{'float': [1, 3, 32, 32]}, ...])."""
    def unpack(items):
        shapes, dtypes = [], []
        for it in items or []:
            (dtype, shape), = it.items() if isinstance(it, dict) and it else (("?", None),)
            shapes.append(list(shape) if shape is not None else None)
            dtypes.append(dtype)
        return shapes, dtypes

    ins, in_dtypes = unpack(node.get("inputs"))
    outs, _ = unpack(node.get("outputs"))
    cost = node_cost(node["op"], ins, outs)
    cost["precision"] = "int8" if is_int8(node["op"], in_dtypes) else (
        "fp16" if in_dtypes[:1] == ["float16"] else "fp32")
    cost["param_bytes"] = node.get("parameter_bytes", 0)
    cost["act_bytes"] = node.get("activation_bytes", 0) + node.get("output_bytes", 0)
    return cost


def onnx_graph_costs(path, batch: int = 1) -> list[dict]:
    """Per-node cost of an ONNX file, shapes from onnx shape inference (symbolic dims set to `batch`)."""
    from onnx import TensorProto, helper, shape_inference

    from edgekit.model_files import onnx_header

    model = onnx_header(path)
    for vi in model.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = batch
    model = shape_inference.infer_shapes(model)
    g = model.graph
    shapes, dtypes = {}, {}
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
        dtypes[vi.name] = helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "float32"
    inits = {i.name: i for i in g.initializer}
    for name, t in inits.items():
        shapes[name] = list(t.dims)
        dtypes[name] = helper.tensor_dtype_to_np_dtype(t.data_type).name if t.data_type != TensorProto.UNDEFINED else "?"

    def nbytes(name):
        return prod(shapes.get(name) or [0]) * DTYPE_BYTES.get(dtypes.get(name, "float32"), 4) if name else 0

    out = []
    for i, n in enumerate(g.node):
        ins = [shapes.get(x) for x in n.input]
        cost = node_cost(n.op_type, ins, [shapes.get(x) for x in n.output])
        cost.update(name=n.name or f"{n.op_type}_{i}", op=n.op_type, outputs=list(n.output),
                    precision="int8" if is_int8(n.op_type, [dtypes.get(x, "") for x in n.input]) else "fp32",
                    param_bytes=sum(nbytes(x) for x in n.input if x in inits),
                    act_bytes=sum(nbytes(x) for x in n.input if x and x not in inits) + sum(nbytes(x) for x in n.output))
        out.append(cost)
    return out


def tflite_op_costs(interp) -> dict[int, dict]:
    """Per-op cost of a loaded LiteRT/TFLite interpreter, by op index (TFLite layouts: CONV_2D weights OHWI,
    DEPTHWISE_CONV_2D [1, kh, kw, C], FULLY_CONNECTED [N, K]). DELEGATE nodes are left out."""
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    try:
        ops = list(interp._get_ops_details())
    except AttributeError:
        return {}

    def shape(i):
        return [int(x) for x in tensors[i]["shape"]] if i in tensors else None

    def nbytes(i):
        if i not in tensors:
            return 0
        return int(prod(tensors[i]["shape"])) * tensors[i]["dtype"]().itemsize if len(tensors[i]["shape"]) else 0

    produced = {int(t) for op in ops for t in op["outputs"]}
    graph_inputs = {d["index"] for d in interp.get_input_details()}
    out = {}
    for op in ops:
        name = op["op_name"]
        if name == "DELEGATE":
            continue
        ins = [int(i) for i in op["inputs"] if int(i) >= 0]
        outs = [int(i) for i in op["outputs"]]
        o = shape(outs[0]) if outs else None
        w = shape(ins[1]) if len(ins) > 1 else None
        oe = prod(o) if o else 0
        macs = 0
        if name == "CONV_2D" and w:
            macs = oe * prod(w[1:])
        elif name == "DEPTHWISE_CONV_2D" and w:
            macs = oe * w[1] * w[2]
        elif name in ("FULLY_CONNECTED", "BATCH_MATMUL") and w:
            macs = oe * (w[-1] if name == "FULLY_CONNECTED" else (shape(ins[0]) or [1])[-1])
        params = [i for i in ins if i not in produced and i not in graph_inputs]  # weights: read, never written
        dtypes = [tensors[i]["dtype"].__name__ for i in ins[:2] if i in tensors]
        out[op["index"]] = {
            "op": name, "macs": macs, "flops": 2 * macs if macs else (0 if name in ("RESHAPE", "SQUEEZE", "TRANSPOSE")
                                                                      else oe),
            "precision": "int8" if any(d in ("int8", "uint8") for d in dtypes) else "fp32",
            "param_bytes": sum(nbytes(i) for i in params),
            "act_bytes": sum(nbytes(i) for i in ins if i not in params) + sum(nbytes(i) for i in outs)}
    return out
