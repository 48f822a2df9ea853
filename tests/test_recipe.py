import pytest
import yaml
from helpers import tiny_recipe, tiny_recipe_dict

from edgekit.errors import RecipeError
from edgekit.recipe import Recipe, load_recipe
from edgekit.yaml_config import validate_yaml_text

BAD = [
    # (yaml text, expected fragments of the message, expected line)
    ("name: x\nseed: 0\nmodel: {arch: cnn}\ndata: {source: digits}\nbogus: 1\n", ["bogus", "unknown key"], 5),
    ("name: x\nmodel:\n  arch: cnn\n  chanels: [8]\ndata: {source: digits}\n", ["model.chanels", "unknown key"], 4),
    ("name: x\nmodel: {arch: cnn}\ndata:\n  source: digits\n  test_fraction: lots\n", ["data.test_fraction"], 5),
    ("name: x\nmodel: {arch: cnn}\ndata: {source: digits}\ntrain:\n  epochs: -1\n", ["train.epochs"], 5),
    ("name: x\nmodel: {arch: convnet}\ndata: {source: digits}\n", ["model", "convnet"], 2),
    ("name: x\nmodel: {arch: cnn}\ndata: {source: digits}\npasses:\n  - name: quantize.static\n    calibraton: minmax\n",
     ["passes.0.calibraton", "unknown key"], 6),
    ("name: x\nmodel: {arch: cnn}\ndata: {source: digits}\npasses:\n  - name: quantize.magic\n", ["passes.0"], 5),
    ("name: x\nmodel: {arch: cnn}\ndata: {source: digits}\nexport:\n  - format: onnx\n    opset: 7\n",
     ["export.0.opset"], 6),
    ("name: x\nmodel: {arch: cnn\n", ["invalid YAML"], None),
    ("- just\n- a list\n", ["mapping"], 1),
]


@pytest.mark.parametrize("text,fragments,line", BAD)
def test_bad_recipes_name_key_and_line(text, fragments, line):
    with pytest.raises(RecipeError) as e:
        validate_yaml_text(text, Recipe, source="r.yaml")
    msg = str(e.value)
    for frag in fragments:
        assert frag in msg, msg
    if line is not None:
        assert e.value.line == line, msg
        assert f"r.yaml:{line}:" in msg


def test_round_trip_is_identity():
    r = tiny_recipe()
    again = validate_yaml_text(r.to_yaml(), Recipe)
    assert again == r
    assert again.to_yaml() == r.to_yaml()


def test_round_trip_of_shipped_recipes(tmp_path):
    from pathlib import Path

    from edgekit.search.run import load_search

    for path in sorted(Path(__file__).parents[1].glob("recipes/*.yaml")):
        if "search" in yaml.safe_load(path.read_text()):  # a search recipe: every end of every space validates
            spec, cfg, _ = load_search(path)
            assert spec.spaces and cfg.trials >= 1, path
            continue
        r = load_recipe(path)
        assert validate_yaml_text(r.to_yaml(), Recipe) == r, path


def test_set_overrides(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(tiny_recipe_dict()))
    r = load_recipe(p, ["train.epochs=7", "model.channels=[4, 8]", "passes.0.calibration=entropy"])
    assert r.train.epochs == 7 and r.model.channels == [4, 8] and r.passes[0].calibration.method == "entropy"
    with pytest.raises(RecipeError, match="train.epoch"):
        load_recipe(p, ["train.epoch=7"])
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        load_recipe(p, ["train.epochs"])


def test_duplicate_artifact_names_rejected():
    with pytest.raises(Exception, match="unique"):
        tiny_recipe(export=[{"format": "onnx"}, {"format": "onnx"}])


def test_missing_file():
    with pytest.raises(RecipeError, match="not found"):
        load_recipe("no/such/recipe.yaml")


def test_union_tags_are_hidden_from_error_keys_of_any_model():
    from typing import Annotated, Literal, Union

    from pydantic import Field

    from edgekit.config_base import Strict

    class Dog(Strict):
        kind: Literal["dog"]
        bark: int = 1

    class Cat(Strict):
        kind: Literal["cat"]

    class Home(Strict):
        pets: list[Annotated[Union[Dog, Cat], Field(discriminator="kind")]]

    with pytest.raises(RecipeError) as e:
        validate_yaml_text("pets:\n  - kind: cat\n  - kind: dog\n    bark: loud\n", Home, source="h.yaml")
    assert e.value.key == "pets.1.bark" and e.value.line == 4, str(e.value)
