"""Hostile and unlucky files: bounds are checked before anything is allocated, and every failure is one line.

User-facing cases run the real `edgekit` command: each asserts the exit code, one `error:` line naming the file,
no traceback, and nothing written outside the test's folder."""

import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import onnx
import pytest
import yaml
from helpers import tiny_recipe_dict
from onnx import TensorProto, helper

from edgekit.errors import ArtifactError, DataError, EdgekitError, ModelLoadError, RecipeError
from edgekit.model_files import check_safetensors, check_tflite, load_onnx, onnx_header
from edgekit.names import UnsafeInputError
from edgekit.recipe import load_recipe

GIB = 1 << 30


def edgekit(*args, cwd, env=None, preexec_fn=None):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **(env or {})}, preexec_fn=preexec_fn)


def one_line_error(p, *needles, code=2) -> str:
    assert p.returncode == code, p.stderr[-3000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def confined(tmp_path):
    """The test's folder; afterwards, nothing new may have appeared beside it."""
    before = set(os.listdir(tmp_path.parent))
    yield tmp_path
    assert set(os.listdir(tmp_path.parent)) - before <= {tmp_path.name}


def external_onnx(folder, tensors, name="m.onnx"):
    """An ONNX file whose initializers live in external data: `tensors` is [(dims, location, offset, length)]."""
    inits, nodes, prev = [], [], "x"
    for i, (dims, location, offset, length) in enumerate(tensors):
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=dims, data_location=TensorProto.EXTERNAL)
        for k, v in {"location": location, "offset": offset, "length": length}.items():
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        inits.append(t)
        nodes.append(helper.make_node("Add", [prev, f"w{i}"], [f"y{i}"]))
        prev = f"y{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", 1, 8, 8])], inits)
    path = folder / name
    onnx.save(helper.make_model(graph), str(path))
    return path


def onnx_recipe(folder, model) -> object:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "hostile", "data": {"source": "digits"},
                                    "model": {"arch": "onnx", "path": str(model)}, "bench": None}))
    return path


def test_onnx_declaring_16_gb_fails_fast_without_reading(confined):
    (confined / "w.bin").write_bytes(b"\0" * 64)
    model = external_onnx(confined, [([4 * GIB], "w.bin", 0, 16 * GIB)])
    t0 = time.perf_counter()
    with pytest.raises(ArtifactError, match=r"tensor 'w0' declares 16\.0 GiB"):
        load_onnx(model)
    assert time.perf_counter() - t0 < 5
    p = edgekit("run", onnx_recipe(confined, model), "--out", confined / "run", cwd=confined)
    one_line_error(p, str(model), "16.0 GiB", "EDGEKIT_MAX_MODEL_BYTES")


def test_external_data_summed_against_the_limit_before_loading(confined, monkeypatch):
    """Five 1 GiB tensors in a sparse 5 GiB file: each fits, the total does not; the check runs in a process that
    could not allocate the data (address space capped at 2 GiB), so a regression fails instead of swapping."""
    with open(confined / "w.bin", "wb") as f:
        f.truncate(5 * GIB)
    model = external_onnx(confined, [([GIB // 4], "w.bin", i * GIB, GIB) for i in range(5)])
    code = ("import sys\nfrom edgekit.model_files import load_onnx\nfrom edgekit.errors import EdgekitError\n"
            "try:\n    load_onnx(sys.argv[1])\nexcept EdgekitError as e:\n    print(e)\n    sys.exit(3)\n")

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (2 * GIB, 2 * GIB))

    p = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120,
                       preexec_fn=cap_memory)
    assert p.returncode == 3, p.stderr[-2000:]
    assert "external data is 5.0 GiB, over the 4.0 GiB limit" in p.stdout
    monkeypatch.setenv("EDGEKIT_MAX_MODEL_BYTES", "6G")
    onnx_header(model)  # within a raised limit the same file passes the checks


@pytest.mark.parametrize("location,message", [
    ("../../etc/passwd", "leads outside"),
    ("/etc/passwd", "must be a relative path"),
    ("missing.bin", "not found"),
])
def test_external_location_must_be_a_file_inside_the_model_folder(confined, location, message):
    model = external_onnx(confined, [([4], location, 0, 16)])
    with pytest.raises((ArtifactError, UnsafeInputError), match=message):
        load_onnx(model)
    p = edgekit("run", onnx_recipe(confined, model), "--out", confined / "run", cwd=confined)
    one_line_error(p, str(model), message)


def test_external_data_symlinked_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "w.bin"
    outside.write_bytes(b"\0" * 16)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").symlink_to(outside)
    with pytest.raises(UnsafeInputError, match="leads outside"):
        load_onnx(external_onnx(tmp_path / "model", [([4], "w.bin", 0, 16)]))


@pytest.mark.parametrize("dims,message", [([-4], "negative dimension"), ([1 << 40, 1 << 10], "over the 4.0 GiB")])
def test_absurd_onnx_dims_name_the_file(confined, dims, message):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [t])
    path = confined / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ArtifactError, match=message) as e:
        load_onnx(path)
    assert str(path) in str(e.value)


def test_absurd_graph_input_dims(confined):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1 << 20, 1 << 20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = confined / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ArtifactError, match="graph input/output 'x' declares 4.0 TiB"):
        load_onnx(path)


def alias_bomb(path, levels=9):
    lines = ["name: bomb", "data: {source: digits}", "model:", "  arch: factory",
             "  factory: helpers:tiny_factory", "  kwargs:", '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"    a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, levels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_yaml_alias_bomb_fails_fast_in_one_line(confined):
    bomb = alias_bomb(confined / "bomb.yaml")
    assert bomb.stat().st_size < 600
    t0 = time.perf_counter()
    with pytest.raises(RecipeError, match="expands to .* nodes .* over the 100,000 limit"):
        load_recipe(bomb)
    assert time.perf_counter() - t0 < 2
    p = edgekit("run", bomb, "--out", confined / "run", cwd=confined)
    one_line_error(p, str(bomb), "alias")
    assert not (confined / "run").exists()


def test_recursive_and_oversized_yaml(confined):
    rec = confined / "rec.yaml"
    rec.write_text("name: &a [*a]\n")
    with pytest.raises(RecipeError, match="recursive YAML alias"):
        load_recipe(rec)
    big = confined / "big.yaml"
    big.write_text(yaml.safe_dump(tiny_recipe_dict()) + "# " + "x" * (2 << 20) + "\n")
    p = edgekit("validate", big, cwd=confined)
    one_line_error(p, str(big), "over the 1.0 MiB limit")
    profile = confined / "dev.yaml"
    alias_bomb(profile)
    with pytest.raises(RecipeError, match="alias bomb"):
        from edgekit.devices.profile import load_profile

        load_profile(str(profile))


def test_nan_in_npz_data_names_the_count_and_file(confined):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    x[[3, 50, 51], [0, 1, 2]] = [np.nan, np.inf, -np.inf]
    data = confined / "data.npz"
    np.savez(data, x=x, y=np.arange(200) % 3)
    recipe = confined / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict(data={"source": "npz", "path": str(data)},
                                                      model={"arch": "mlp", "hidden": [8]}, passes=[])))
    p = edgekit("run", recipe, "--out", confined / "run", cwd=confined)
    one_line_error(p, str(data), "3 non-finite values", "sample 3")


def lying_npz(path, shape, stored=64):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    buf.write(b"\0" * stored)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue())
    return path


@pytest.mark.parametrize("shape,message", [((10**12, 64), "over the 4.0 GiB limit"),
                                           ((100, 64), "more than the"), ((-5, 4), "negative dimension")])
def test_absurd_npz_shapes_are_refused_before_allocation(confined, shape, message):
    from edgekit.data import load_data
    from edgekit.data.config import NpzData

    path = lying_npz(confined / "d.npz", shape)
    with pytest.raises(DataError, match=message) as e:
        load_data(NpzData(source="npz", path=path))
    assert str(path) in str(e.value)


def test_non_finite_csv_values_and_float32_overflow(confined):
    from edgekit.data import load_data
    from edgekit.data.config import CsvData

    path = confined / "d.csv"
    rows = [f"{i % 3},{i * 0.5},{1e300 if i == 7 else i}" for i in range(40)]
    path.write_text("label,a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match="1 non-finite values .* the first in sample 7"):
        load_data(CsvData(source="csv", path=path, label_column="label"))


def lying_safetensors(path, edit):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4, 4)}, str(path))
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    edit(header)
    new = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda h: h["w"].update(shape=[400, 400]), "declares bytes 0..64"),
    (lambda h: h["w"].update(shape=[1 << 31, 1 << 10]), "over the 4.0 GiB limit"),
    (lambda h: h["w"].update(data_offsets=[0, 1 << 40]), "declares bytes 0..1099511627776"),
    (lambda h: h["w"].update(dtype="X99"), "unknown dtype"),
])
def test_safetensors_header_lying_about_sizes(confined, edit, message):
    path = lying_safetensors(confined / "w.safetensors", edit)
    with pytest.raises(ModelLoadError, match=message):
        check_safetensors(path)


def test_safetensors_checkpoint_lying_on_the_command_line(confined):
    ckpt = lying_safetensors(confined / "w.safetensors", lambda h: h["w"].update(shape=[400, 400]))
    recipe = confined / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict(passes=[])))
    p = edgekit("export", recipe, "--checkpoint", ckpt, "--out", confined / "run", cwd=confined)
    one_line_error(p, str(ckpt), "declares bytes")


def test_tflite_bounded_before_reading(confined, monkeypatch):
    path = confined / "m.tflite"
    path.write_bytes(b"\xff\xff\xff\x7fTFL3" + b"\xff" * 4096)
    with pytest.raises(ArtifactError, match="not a valid TFLite flatbuffer"):
        check_tflite(path)
    monkeypatch.setenv("EDGEKIT_MAX_MODEL_BYTES", "1k")
    with pytest.raises(ArtifactError, match=r"TFLite file is 4\.0 KiB, over the 1\.0 KiB limit"):
        check_tflite(path)


def test_out_at_an_existing_file(confined):
    recipe = confined / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict()))
    existing = confined / "existing"
    existing.write_text("keep me")
    p = edgekit("run", recipe, "--out", existing, cwd=confined)
    one_line_error(p, str(existing), "not a folder")
    assert existing.read_text() == "keep me"


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE")
def test_a_failed_write_is_one_line_naming_the_file(confined):
    """A file-size limit makes writes fail as on a full disk (EFBIG here, ENOSPC there: the same code path)."""
    recipe = confined / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict()))

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    p = edgekit("run", recipe, "--out", confined / "run", cwd=confined, preexec_fn=small_files)
    one_line_error(p, "recipe.yaml", "cannot write", code=1)


def test_journal_storage_in_a_missing_folder(confined):
    from test_search import search_text

    recipe = confined / "search.yaml"
    recipe.write_text(search_text(trials=1))
    p = edgekit("search", recipe, "--out", confined / "s", "--storage", "journal:missing-dir/j.log", cwd=confined)
    one_line_error(p, "missing-dir/j.log", "does not exist")
    assert not (confined / "missing-dir").exists()


def test_factory_model_that_does_not_fit_the_data(confined):
    (confined / "badfac.py").write_text("from torch import nn\n\n\ndef make():\n"
                                        "    return nn.Sequential(nn.Flatten(), nn.Linear(10, 3))\n")
    recipe = confined / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_dict(model={"arch": "factory", "factory": "badfac:make"}, passes=[])))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(confined), os.environ.get("PYTHONPATH")]))}
    p = edgekit("run", recipe, "--out", confined / "run", cwd=confined, env=env)
    one_line_error(p, "badfac:make", "(1, 1, 8, 8)", "mat1 and mat2")


def test_limits_read_from_the_environment(monkeypatch):
    from edgekit.limits import limit

    monkeypatch.setenv("EDGEKIT_MAX_MODEL_BYTES", "8G")
    assert limit("EDGEKIT_MAX_MODEL_BYTES") == 8 * GIB
    monkeypatch.setenv("EDGEKIT_MAX_MODEL_BYTES", "lots")
    with pytest.raises(EdgekitError, match="EDGEKIT_MAX_MODEL_BYTES"):
        limit("EDGEKIT_MAX_MODEL_BYTES")


def test_no_module_loads_onnx_around_the_bounds_check():
    """Every ONNX file is read through edgekit.model_files (onnx_header / load_onnx)."""
    from pathlib import Path

    import edgekit

    root = Path(edgekit.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "model_files.py" and ("onnx.load(" in p.read_text() or "onnx.load_model(" in p.read_text())]
    assert not offenders


def test_run_folder_arrays_are_bounded_too(tmp_path, monkeypatch):
    from edgekit.array_files import check_array_file
    from edgekit.errors import GateInputError

    npy = tmp_path / "reference_outputs.npy"
    with open(npy, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
        f.write(b"\0" * 16)
    with pytest.raises(GateInputError, match="reference_outputs.npy: array 'reference_outputs' declares 4.0 TiB"):
        check_array_file(npy, GateInputError)
    bomb = tmp_path / "samples.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("junk", b"\0" * (5 << 20))
    monkeypatch.setenv("EDGEKIT_MAX_DATA_BYTES", "1M")
    with pytest.raises(DataError, match="arrays uncompressed is 5.0 MiB, over the 1.0 MiB limit"):
        check_array_file(bomb)


def test_user_onnx_with_honest_external_data_runs_and_its_artifact_stands_alone(confined):
    from onnx import numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    convert_model_to_external_data(model, location="m.onnx.data", size_threshold=0)
    onnx.save(model, str(confined / "m.onnx"))
    p = edgekit("run", onnx_recipe(confined, confined / "m.onnx"), "--out", confined / "run", cwd=confined)
    assert p.returncode == 0, p.stderr[-3000:]
    artifact = load_onnx(confined / "run" / "artifacts" / "onnx-fp32.onnx")
    assert numpy_helper.to_array(artifact.graph.initializer[0]).shape == (64, 10)
    assert [n for n in os.listdir(confined / "run" / "artifacts") if not n.endswith(".json")] == ["onnx-fp32.onnx"]


def test_gzip_bomb_idx_stops_at_the_limit(tmp_path, monkeypatch):
    import gzip

    from edgekit.data.fashion_mnist import read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\0\0\x08\x01" + (8 << 20).to_bytes(4, "big") + b"\0" * (8 << 20))
    monkeypatch.setenv("EDGEKIT_MAX_DATA_BYTES", "1M")
    with pytest.raises(DataError, match="over the 1.0 MiB limit"):
        read_idx(path)


def test_run_folder_json_is_bounded_and_nesting_is_one_line(confined, monkeypatch):
    report = confined / "run" / "report.json"
    report.parent.mkdir()
    report.write_text("[" * 100_000 + "]" * 100_000)
    p = edgekit("gate", confined / "run", cwd=confined)
    one_line_error(p, str(report), "nested too deeply")
    report.write_text(json.dumps({"schema": "x", "pad": "y" * 4096}))
    monkeypatch.setenv("EDGEKIT_MAX_JSON_BYTES", "1k")
    from edgekit.errors import GateInputError
    from edgekit.report.io import load_report

    with pytest.raises(GateInputError, match="over the 1.0 KiB limit"):
        load_report(report)
