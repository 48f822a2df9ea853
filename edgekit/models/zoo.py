"""Small edge-friendly architectures. Every builder takes (config, input_shape, num_classes)."""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.errors import ModelLoadError


def _flat_features(input_shape) -> int:
    return int(math.prod(input_shape))


def build_mlp(cfg, input_shape, num_classes) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = _flat_features(input_shape)
    for h in cfg.hidden:
        layers.append(nn.Linear(width, h))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _image_channels(input_shape, arch: str) -> int:
    if len(input_shape) != 3:
        raise ModelLoadError(f"{arch} needs image input (C, H, W); data has shape {tuple(input_shape)}")
    return int(input_shape[0])


class ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, k, stride, batch_norm, groups=1, act: type[nn.Module] = nn.ReLU):
        mods: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not batch_norm)]
        if batch_norm:
            mods.append(nn.BatchNorm2d(cout))
        if act is not None:
            mods.append(act(inplace=True))
        super().__init__(*mods)


class Classifier(nn.Module):
    """Global-average-pool head shared by the conv architectures; `fc` is the layer to protect."""

    def __init__(self, cin, num_classes, dropout):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


class Cnn(nn.Module):
    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        cin = _image_channels(input_shape, "cnn")
        blocks = []
        for i, c in enumerate(cfg.channels):
            blocks.append(ConvBlock(cin, c, cfg.kernel_size, 1 if i == 0 else 2, cfg.batch_norm))
            cin = c
        self.features = nn.Sequential(*blocks)
        self.head = Classifier(cin, num_classes, cfg.dropout)

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Resnet(nn.Module):
    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        if len(cfg.widths) != len(cfg.blocks):
            raise ModelLoadError(f"resnet: {len(cfg.widths)} widths but {len(cfg.blocks)} block counts")
        cin = _image_channels(input_shape, "resnet")
        self.stem = ConvBlock(cin, cfg.widths[0], 3, 1, True)
        stages, cin = [], cfg.widths[0]
        for i, (w, n) in enumerate(zip(cfg.widths, cfg.blocks)):
            for j in range(n):
                stages.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.head = Classifier(cin, num_classes, cfg.dropout)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBlock(cin, hidden, 1, 1, True, act=nn.ReLU6))
        layers += [
            ConvBlock(hidden, hidden, 3, stride, True, groups=hidden, act=nn.ReLU6),
            ConvBlock(hidden, cout, 1, 1, True, act=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobilenetV2(nn.Module):
    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        cin = _image_channels(input_shape, "mobilenet_v2")
        stem = _make_divisible(cfg.stem_channels * cfg.width_mult)
        # Small inputs (<= 32 px) keep full resolution in the stem; ImageNet-sized ones use stride 2.
        stem_stride = 2 if min(input_shape[1:]) > 32 else 1
        layers: list[nn.Module] = [ConvBlock(cin, stem, 3, stem_stride, True, act=nn.ReLU6)]
        c_prev = stem
        for t, c, n, s in cfg.stages:
            cout = _make_divisible(c * cfg.width_mult)
            for i in range(n):
                layers.append(InvertedResidual(c_prev, cout, s if i == 0 else 1, t))
                c_prev = cout
        last = _make_divisible(cfg.last_channels * max(1.0, cfg.width_mult))
        layers.append(ConvBlock(c_prev, last, 1, 1, True, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = Classifier(last, num_classes, cfg.dropout)

    def forward(self, x):
        return self.head(self.features(x))


def initialize(model: nn.Module, scheme: str) -> None:
    """Xavier or He (Kaiming) init for conv/linear weights; batch-norm to identity; biases to zero."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def head_name(model: nn.Module) -> str | None:
    """Qualified name of the final classifier layer (protected from pruning, the default transfer head)."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    return last
