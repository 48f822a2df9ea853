import pickle

import numpy as np
import pytest
import torch
from helpers import TINY_MODELS
from pydantic import TypeAdapter

from edgekit.errors import ModelLoadError
from edgekit.models import ModelConfig, build_model
from edgekit.models.checkpoint import load_state_dict, save_checkpoint
from edgekit.models.config import FactoryModel, TorchScriptModel
from edgekit.models.stats import model_stats

ADAPTER = TypeAdapter(ModelConfig)


@pytest.mark.parametrize("arch", sorted(TINY_MODELS))
def test_zoo_forward_and_onnx_export(arch, tmp_path):
    from edgekit.export.config import OnnxExport
    from edgekit.export.onnx import OnnxExporter
    from edgekit.runtimes.onnxruntime import OnnxRuntime

    model = build_model(ADAPTER.validate_python(TINY_MODELS[arch]), (1, 8, 8), 10).eval()
    x = torch.randn(3, 1, 8, 8)
    assert model(x).shape == (3, 10)
    stats = model_stats(model, (1, 8, 8))
    assert stats["params"] > 0 and stats["macs"] > 0
    art = OnnxExporter().export(model, x.numpy(), OnnxExport(format="onnx", exporter="legacy"), tmp_path / "m.onnx",
                                tmp_path, "m")
    out = OnnxRuntime().load(tmp_path / "m.onnx").run(x.numpy())
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)
    assert art.inputs[0].shape[0] == "batch"  # dynamic batch axis


@pytest.mark.parametrize("init", ["xavier", "he"])
def test_init_schemes_change_weights(init):
    torch.manual_seed(0)
    a = build_model(ADAPTER.validate_python({"arch": "mlp", "init": "default"}), (4,), 2)
    torch.manual_seed(0)
    b = build_model(ADAPTER.validate_python({"arch": "mlp", "init": init}), (4,), 2)
    assert not torch.equal(a[1].weight, b[1].weight) and torch.all(b[1].bias == 0)


def test_safetensors_round_trip_and_factory(tmp_path):
    model = build_model(ADAPTER.validate_python(TINY_MODELS["cnn"]), (1, 8, 8), 10)
    save_checkpoint(model, tmp_path / "w.safetensors", {"note": "x"})
    cfg = FactoryModel(arch="factory", factory="helpers:tiny_factory", weights=tmp_path / "w.safetensors")
    loaded = build_model(cfg, (1, 8, 8), 10)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_pt_state_dict_is_loaded_with_weights_only(tmp_path):
    model = build_model(ADAPTER.validate_python(TINY_MODELS["mlp"]), (4,), 2)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert set(load_state_dict(tmp_path / "w.pt")) == set(model.state_dict())


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(ModelLoadError, match="refused to unpickle|not a readable"):
        load_state_dict(path)
    torch.save({"w": torch.zeros(2), "meta": Evil()}, tmp_path / "evil2.pt")
    with pytest.raises(ModelLoadError, match="refused to unpickle"):
        load_state_dict(tmp_path / "evil2.pt")


def test_corrupt_and_mismatched_weights(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelLoadError, match="bad.safetensors"):
        load_state_dict(tmp_path / "bad.safetensors")
    other = build_model(ADAPTER.validate_python({"arch": "cnn", "channels": [4, 4]}), (1, 8, 8), 10)
    save_checkpoint(other, tmp_path / "other.safetensors")
    cfg = FactoryModel(arch="factory", factory="helpers:tiny_factory", weights=tmp_path / "other.safetensors")
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        build_model(cfg, (1, 8, 8), 10)


def test_torchscript_model(tmp_path):
    model = build_model(ADAPTER.validate_python(TINY_MODELS["mlp"]), (4,), 3).eval()
    torch.jit.trace(model, torch.randn(1, 4)).save(str(tmp_path / "m.pt"))
    loaded = build_model(TorchScriptModel(arch="torchscript", path=tmp_path / "m.pt"), (4,), 3)
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded(x), model(x))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelLoadError, match="junk.pt"):
        build_model(TorchScriptModel(arch="torchscript", path=tmp_path / "junk.pt"), (4,), 3)


def test_factory_errors():
    with pytest.raises(ModelLoadError, match="cannot import"):
        build_model(FactoryModel(arch="factory", factory="no_such_mod:f"), (4,), 2)
    with pytest.raises(ModelLoadError, match="bad kwargs"):
        build_model(FactoryModel(arch="factory", factory="helpers:tiny_factory", kwargs={"nope": 1}), (4,), 2)
