"""Pass registry: name -> (config class, implementation). Configs are light; implementations import lazily."""

from __future__ import annotations

from typing import NamedTuple

from edgekit.passes.distill import DistillConfig
from edgekit.passes.equalize import EqualizeConfig
from edgekit.passes.inc_autotune import AutotuneConfig
from edgekit.passes.ort_quantize import DynamicQuantConfig, Fp16Config, StaticQuantConfig
from edgekit.passes.prune_nm import NMPruneConfig
from edgekit.passes.prune_structured import StructuredPruneConfig
from edgekit.passes.prune_unstructured import UnstructuredPruneConfig
from edgekit.passes.qat import QatConfig
from edgekit.passes.quant_schemes import AutoQuantConfig
from edgekit.passes.tflite_quantize import TfliteQuantConfig
from edgekit.passes.weight_only import WeightOnlyConfig
from edgekit.registry import load_object, registry_union


class PassEntry(NamedTuple):
    """`config`: the pass's config class (its `name` field names the entry); `impl`: 'module:Class' of the pass."""

    config: type
    impl: str


PASSES: dict[str, PassEntry] = {
    "quantize.static": PassEntry(StaticQuantConfig, "edgekit.passes.ort_quantize:StaticQuantize"),
    "quantize.auto": PassEntry(AutoQuantConfig, "edgekit.passes.quant_auto:AutoQuantize"),
    "quantize.dynamic": PassEntry(DynamicQuantConfig, "edgekit.passes.ort_quantize:DynamicQuantize"),
    "quantize.fp16": PassEntry(Fp16Config, "edgekit.passes.ort_quantize:Fp16"),
    "quantize.tflite": PassEntry(TfliteQuantConfig, "edgekit.passes.tflite_quantize:TfliteQuantize"),
    "prune.structured": PassEntry(StructuredPruneConfig, "edgekit.passes.prune_structured:StructuredPrune"),
    "prune.unstructured": PassEntry(UnstructuredPruneConfig, "edgekit.passes.prune_unstructured:UnstructuredPrune"),
    "prune.nm": PassEntry(NMPruneConfig, "edgekit.passes.prune_nm:NMPrune"),
    "distill": PassEntry(DistillConfig, "edgekit.passes.distill:Distill"),
    "equalize": PassEntry(EqualizeConfig, "edgekit.passes.equalize:Equalize"),
    "quantize.qat": PassEntry(QatConfig, "edgekit.passes.qat:Qat"),
    "quantize.autotune": PassEntry(AutotuneConfig, "edgekit.passes.inc_autotune:Autotune"),
    "quantize.weight_only": PassEntry(WeightOnlyConfig, "edgekit.passes.weight_only:WeightOnly"),
}


PassConfig = registry_union(PASSES, "name")


def get_pass(config):
    return load_object(PASSES[config.name].impl)(config)


def pass_config(config):
    """A pass config as given, or validated from its mapping (its `name` picks the config class)."""
    if not isinstance(config, dict):
        return config
    from edgekit.errors import PassError

    if config.get("name") not in PASSES:
        raise PassError(f"unknown pass '{config.get('name')}' (known: {sorted(PASSES)})")
    from pydantic import ValidationError

    try:
        return PASSES[config["name"]].config.model_validate(config)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(config)"
        raise PassError(f"pass {config['name']}: {key}: {first['msg']}") from None
