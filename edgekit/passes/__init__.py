"""Pass registry: name -> (config class, implementation). Configs are light; implementations import lazily."""

from __future__ import annotations

import importlib

from edgekit.passes.ort_quantize import DynamicQuantConfig, Fp16Config, StaticQuantConfig

PASSES = {
    "quantize.static": (StaticQuantConfig, "edgekit.passes.ort_quantize:StaticQuantize"),
    "quantize.dynamic": (DynamicQuantConfig, "edgekit.passes.ort_quantize:DynamicQuantize"),
    "quantize.fp16": (Fp16Config, "edgekit.passes.ort_quantize:Fp16"),
}


def pass_configs() -> list[type]:
    return [cfg for cfg, _ in PASSES.values()]


def get_pass(config):
    module, _, cls = PASSES[config.name][1].partition(":")
    return getattr(importlib.import_module(module), cls)(config)
