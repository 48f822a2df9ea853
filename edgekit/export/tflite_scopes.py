"""Name torch modules in a litert-torch flatbuffer: selective quantization (`keep_float:`) of a TFLite int8 file.

litert-torch names each op's output tensor after the module path that produced it, one `<class>_<attribute>` per
level joined by "/" (`...EfficientNetLite0/torch.nn.modules.container.Sequential__blocks/...MBConv_0/
torch.nn.modules.conv.Conv2d__depthwise_conv;`), fused ops joining several such scopes with ";;".
ai-edge-quantizer picks an op's quantization by a regex search on that name, so a torch module name becomes a
regex here; a name that matches no op is an error, never a silently quantized layer.
"""

from __future__ import annotations

import re


def module_scope_regex(module: str) -> str:
    """Regex that finds the scope of torch module `module` ("_blocks.0._depthwise_conv") or of anything inside it
    in a tensor name. Anchored at the root module's scope: "0" is the root's child 0 only (not "1.0", not
    "MBConv_10"), "conv" does not match "Conv2d__conv_stem", and a block ("_blocks.3") takes every op inside it."""
    levels = [rf"[^/;]*[A-Za-z0-9>]_{re.escape(p)}" for p in module.split(".")]
    return "(?:^|;)[^/;]+/" + "/".join(levels) + "(?=[/;]|$)"


def op_scopes(fp32: bytes) -> list[tuple[str, str]]:
    """(op type, output tensor name) of every op in the flatbuffer."""
    from edgekit.runtimes.litert import interpreter_module, quiet_stderr

    with quiet_stderr():
        interp = interpreter_module().Interpreter(model_content=fp32)
        interp.allocate_tensors()
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    return [(op["op_name"], names.get(op["outputs"][0], "")) for op in interp._get_ops_details()
            if len(op["outputs"])]


def match_modules(fp32: bytes, modules: list[str]) -> dict[str, list[str]]:
    """{module: op types it names}; ValueError for a module that names no op (with an example op name)."""
    ops = [(t, name) for t, name in op_scopes(fp32) if t != "DELEGATE"]
    out: dict[str, list[str]] = {}
    for m in modules:
        rx = re.compile(module_scope_regex(m))
        hits = [t for t, name in ops if rx.search(name)]
        if not hits:
            example = f" (op outputs are named like {ops[len(ops) // 2][1][:160]!r})" if ops else ""
            raise ValueError(f"keep_float: module {m!r} names no op of the converted model; give a module path as "
                             f"in model.named_modules(). The model's last op is named after the model output, "
                             f"not its module, and cannot be kept float by name{example}")
        out[m] = hits
    return out
