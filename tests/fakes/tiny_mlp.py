"""A zoo architecture: a one-hidden-layer MLP over flat features."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from edgekit.config_base import Strict


class TinyMlpConfig(Strict):
    arch: Literal["tiny-mlp"]
    hidden: int = Field(16, ge=1)


def build(cfg: TinyMlpConfig, input_shape, num_classes):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), cfg.hidden), nn.ReLU(),
                         nn.Linear(cfg.hidden, num_classes))
