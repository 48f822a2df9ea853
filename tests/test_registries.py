"""Registries are the only place a name is written: a fake of each extension (tests/fakes/, one module each) is one
registry line away from a real recipe run; recipe `version` and pass order are checked with the key and line."""

from __future__ import annotations

import importlib
import json
import typing

import numpy as np
import pytest
import yaml
from fakes.arrays_data import BlobsData
from fakes.npz_weights import NpzWeightsExport, NpzWeightsFile
from fakes.tiny_mlp import TinyMlpConfig
from helpers import tiny_recipe_dict

from edgekit import api
from edgekit.data import SOURCES, DataSource
from edgekit.devices import load_profile
from edgekit.devices.transports import TRANSPORTS, TransportEntry
from edgekit.errors import RecipeError
from edgekit.export import EXPORTERS, ExportFormat
from edgekit.models import ARCHS, Arch
from edgekit.recipe import Recipe, load_recipe
from edgekit.runtimes import RUNTIMES, RuntimeEntry
from edgekit.yaml_config import validate_yaml_text


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """Each fake registered with one line, and a device profile that names the fake transport and runtime."""
    monkeypatch.setitem(SOURCES, "blobs", DataSource(BlobsData, "fakes.arrays_data:load"))
    monkeypatch.setitem(ARCHS, "tiny-mlp", Arch(TinyMlpConfig, "fakes.tiny_mlp:build"))
    monkeypatch.setitem(EXPORTERS, "npz-weights", ExportFormat(NpzWeightsExport, "fakes.npz_weights:NpzWeightsExporter",
                                                               NpzWeightsFile))
    monkeypatch.setitem(RUNTIMES, "numpy-mlp", RuntimeEntry("fakes.npz_weights:NumpyMlpRuntime", ("npz-weights",)))
    monkeypatch.setitem(TRANSPORTS, "inproc", TransportEntry("fakes.inproc_transport"))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "inproc-dev.yaml").write_text(
        "name: inproc-dev\ntransport: inproc\nthreads: 1\nruntimes: [numpy-mlp]\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fake_recipe() -> dict:
    return {"name": "fakes", "data": {"source": "blobs", "samples": 300},
            "model": {"arch": "tiny-mlp", "hidden": 16},
            "train": {"epochs": 8, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}, "progress": False},
            "export": [{"format": "npz-weights"}],
            "bench": {"devices": ["inproc-dev"], "warmup": 1, "iterations": 5, "min_time_s": 0.0},
            "gates": {"min_accuracy": 0.6}}


def test_a_fake_of_each_extension_runs_a_real_recipe(fakes):
    recipe = Recipe.model_validate(fake_recipe())
    assert type(recipe.data) is BlobsData and type(recipe.model) is TinyMlpConfig
    assert type(recipe.export[0]) is NpzWeightsExport
    run = api.run(recipe, out_dir=fakes / "run", log=False)
    report = run.report
    art = next(a for a in report.artifacts if a.name == "npz-weights-fp32")
    assert art.format == "npz-weights" and art.path.endswith(".npz") and art.status == "ok", art
    assert art.parity is not None and art.parity.passed and art.parity.max_abs < 1e-4  # numpy vs PyTorch
    row = next(r for r in report.results if r.artifact == art.name)
    assert row.device == "inproc-dev" and row.runtime == "numpy-mlp" and row.status == "ok", row
    assert row.accuracy is not None and row.accuracy > 0.6  # well-separated blobs, run by numpy in the real agent
    with np.load(run.run_dir / art.path) as weights:
        assert weights["w0"].shape == (16, 6)
    written = yaml.safe_load((run.run_dir / "recipe.yaml").read_text())
    assert written["version"] == 1 and written["data"]["source"] == "blobs"


def test_fake_transport_is_asked_not_named(fakes):
    from edgekit.devices import transport_entry

    profile = load_profile("inproc-dev")
    assert not transport_entry(profile).remote and transport_entry(profile).runs_agent
    assert api.device_check("inproc-dev")["runtimes"]["numpy-mlp"]["importable"]


def test_unregistered_names_are_refused_with_the_known_ones(fakes):
    d = fake_recipe()
    with pytest.raises(Exception, match="tiny-mlp"):  # a fake is listed among the expected tags once registered
        Recipe.model_validate({**d, "model": {"arch": "nope"}})
    with pytest.raises(Exception, match="unknown transport 'teleport'.*inproc"):
        from edgekit.devices.profile import DeviceProfile

        DeviceProfile(name="x", transport="teleport")


def test_errors_inside_a_registered_config_name_the_key_and_line(fakes):
    text = yaml.safe_dump({**fake_recipe(), "model": {"arch": "tiny-mlp", "hiden": 4}}, sort_keys=False)
    with pytest.raises(RecipeError) as e:
        validate_yaml_text(text, Recipe, source="r.yaml")
    assert e.value.key == "model.hiden" and "unknown key" in str(e.value)
    assert text.splitlines()[e.value.line - 1].strip().startswith("hiden")


def test_schema_lists_the_registered_names():
    schema = json.dumps(Recipe.model_json_schema())
    for name in ("quantize.static", "digits", "resnet", "tflite"):
        assert f'"{name}"' in schema
    from edgekit.devices.profile import DeviceProfile

    assert DeviceProfile.model_json_schema()["properties"]["transport"]["enum"] == list(TRANSPORTS)


def test_version(tmp_path):
    r = Recipe.model_validate(tiny_recipe_dict())
    assert r.version == 1 and r.to_yaml().startswith("version: 1\n")
    text = yaml.safe_dump({"version": 2, **tiny_recipe_dict()}, sort_keys=False)
    with pytest.raises(RecipeError) as e:
        validate_yaml_text(text, Recipe, source="r.yaml")
    assert e.value.key == "version" and e.value.line == 1 and "version 2" in str(e.value) and "version 1" in str(e.value)
    old = tmp_path / "old.yaml"  # a recipe written before versions: read as version 1
    old.write_text(yaml.safe_dump(tiny_recipe_dict(), sort_keys=False))
    assert load_recipe(old).version == 1


def test_a_torch_pass_after_a_file_pass_is_an_error_at_its_line():
    passes = [{"name": "quantize.dynamic"}, {"name": "prune.unstructured", "sparsity": 0.5}]
    text = yaml.safe_dump(tiny_recipe_dict(passes=passes), sort_keys=False)
    with pytest.raises(RecipeError) as e:
        validate_yaml_text(text, Recipe, source="r.yaml")
    msg = str(e.value)
    assert e.value.key == "passes.1" and "move prune.unstructured above quantize.dynamic" in msg, msg
    assert "prune.unstructured" in text.splitlines()[e.value.line - 1]
    ok = validate_yaml_text(yaml.safe_dump(tiny_recipe_dict(passes=passes[::-1])), Recipe)
    assert [p.name for p in ok.passes] == ["prune.unstructured", "quantize.dynamic"]


def test_each_entry_is_filed_under_its_own_name():
    """A config's tag and a runtime's reported name are the registry key: a typo in either would split one name."""
    from edgekit.passes import PASSES
    from edgekit.runtimes import runtime_class

    for registry, tag in ((SOURCES, "source"), (ARCHS, "arch"), (EXPORTERS, "format"), (PASSES, "name")):
        for name, entry in registry.items():
            assert typing.get_args(entry.config.model_fields[tag].annotation) == (name,), (name, entry)
    for name, entry in EXPORTERS.items():
        assert entry.handle.format == name and entry.suffix.startswith("."), name
    for name in RUNTIMES:
        assert runtime_class(name).name == name
    for name, entry in TRANSPORTS.items():
        module = importlib.import_module(entry.impl)
        assert callable(module.run_agent) and callable(module.check), name


def test_each_export_format_names_the_handle_of_its_files():
    for name, entry in EXPORTERS.items():
        assert entry.handle.format == name and entry.suffix.startswith(".")
