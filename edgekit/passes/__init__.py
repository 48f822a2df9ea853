"""Pass registry: name -> (config class, implementation). Configs are light; implementations import lazily."""

from __future__ import annotations

import importlib

from edgekit.passes.distill import DistillConfig
from edgekit.passes.equalize import EqualizeConfig
from edgekit.passes.inc_autotune import AutotuneConfig
from edgekit.passes.ort_quantize import DynamicQuantConfig, Fp16Config, StaticQuantConfig
from edgekit.passes.prune_nm import NMPruneConfig
from edgekit.passes.prune_structured import StructuredPruneConfig
from edgekit.passes.prune_unstructured import UnstructuredPruneConfig
from edgekit.passes.qat import QatConfig
from edgekit.passes.quant_auto import AutoQuantConfig
from edgekit.passes.weight_only import WeightOnlyConfig

PASSES = {
    "quantize.static": (StaticQuantConfig, "edgekit.passes.ort_quantize:StaticQuantize"),
    "quantize.auto": (AutoQuantConfig, "edgekit.passes.quant_auto:AutoQuantize"),
    "quantize.dynamic": (DynamicQuantConfig, "edgekit.passes.ort_quantize:DynamicQuantize"),
    "quantize.fp16": (Fp16Config, "edgekit.passes.ort_quantize:Fp16"),
    "prune.structured": (StructuredPruneConfig, "edgekit.passes.prune_structured:StructuredPrune"),
    "prune.unstructured": (UnstructuredPruneConfig, "edgekit.passes.prune_unstructured:UnstructuredPrune"),
    "prune.nm": (NMPruneConfig, "edgekit.passes.prune_nm:NMPrune"),
    "distill": (DistillConfig, "edgekit.passes.distill:Distill"),
    "equalize": (EqualizeConfig, "edgekit.passes.equalize:Equalize"),
    "quantize.qat": (QatConfig, "edgekit.passes.qat:Qat"),
    "quantize.autotune": (AutotuneConfig, "edgekit.passes.inc_autotune:Autotune"),
    "quantize.weight_only": (WeightOnlyConfig, "edgekit.passes.weight_only:WeightOnly"),
}


def pass_configs() -> list[type]:
    return [cfg for cfg, _ in PASSES.values()]


def get_pass(config):
    module, _, cls = PASSES[config.name][1].partition(":")
    return getattr(importlib.import_module(module), cls)(config)
