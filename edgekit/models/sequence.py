"""Sequence and attention architectures: LSTM/GRU over float sequences, a token transformer, a tiny ViT.

Attention is written out (Linear, matmul, softmax) rather than nn.MultiheadAttention, whose fused inference path
torch.export cannot always trace; the plain form exports to ONNX (dynamic batch and sequence) and to TFLite.
Each model carries its input spec (`edgekit_input`): exporters read the input name, dtype and dynamic axes from it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.errors import ModelLoadError
from edgekit.models.config import InputSpec
from edgekit.models.inputs import attach_input_spec

MAX_DIM = 65536


def _seq_shape(input_shape, arch: str) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ModelLoadError(f"{arch} needs sequence input (seq_len, features); data has shape {tuple(input_shape)}")
    return int(input_shape[0]), int(input_shape[1])


class RecurrentClassifier(nn.Module):
    """LSTM or GRU layers, then a linear head on the last step (both directions' ends) or the mean over steps."""

    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        _, features = _seq_shape(input_shape, cfg.arch)
        cell = nn.LSTM if cfg.arch == "lstm" else nn.GRU
        self.rnn = cell(features, cfg.hidden, num_layers=cfg.layers, batch_first=True, bidirectional=cfg.bidirectional,
                        dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.hidden, self.bidirectional, self.pool = cfg.hidden, cfg.bidirectional, cfg.pool
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout else nn.Identity()
        self.fc = nn.Linear(cfg.hidden * (2 if cfg.bidirectional else 1), num_classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        if self.pool == "mean":
            h = out.mean(1)
        elif self.bidirectional:  # the forward direction ends at the last step, the backward one at the first
            h = torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden:]], dim=1)
        else:
            h = out[:, -1]
        return self.fc(self.dropout(h))


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        att = torch.softmax((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)), dim=-1)
        out = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout) if dropout else nn.Identity(),
                                 nn.Linear(ff_dim, d_model))
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x):
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class Encoder(nn.Module):
    """Blocks + final norm + pooling (cls token at position 0, or the mean over positions) + linear head."""

    def __init__(self, cfg, num_classes):
        super().__init__()
        ff = cfg.ff_dim or 4 * cfg.d_model
        self.blocks = nn.Sequential(*[EncoderBlock(cfg.d_model, cfg.heads, ff, cfg.dropout) for _ in range(cfg.layers)])
        self.norm = nn.LayerNorm(cfg.d_model)
        self.pool = cfg.pool
        self.fc = nn.Linear(cfg.d_model, num_classes)

    def forward(self, h):
        h = self.norm(self.blocks(h))
        return self.fc(h[:, 0] if self.pool == "cls" else h.mean(1))


def sinusoidal(length: int, d_model: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
    return table[None]


class TokenTransformer(nn.Module):
    """Classifier over int64 token ids (N, seq_len)."""

    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        if len(input_shape) != 1:
            raise ModelLoadError(f"transformer needs token ids (seq_len,); data has shape {tuple(input_shape)}")
        if cfg.vocab_size is None:
            raise ModelLoadError("transformer: model.vocab_size is not set and the data gives none (integer token ids)")
        self.max_len = cfg.max_len or int(input_shape[0])
        if input_shape[0] > self.max_len:
            raise ModelLoadError(f"transformer: data sequences have {input_shape[0]} tokens, "
                                 f"model.max_len is {self.max_len}")
        extra = 1 if cfg.pool == "cls" else 0
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.positional == "learned":
            self.pos = nn.Parameter(torch.randn(1, self.max_len + extra, cfg.d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal(self.max_len + extra, cfg.d_model), persistent=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model)) if extra else None
        self.encoder = Encoder(cfg, num_classes)
        axes = {0: ("batch", 1, MAX_DIM)}
        if cfg.dynamic_seq:
            axes[1] = ("seq", 1, self.max_len)
        attach_input_spec(self, InputSpec(name="input", dtype="int64", dynamic_axes=axes))

    def forward(self, x):
        h = self.embed(x)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
        h = h + self.pos[:, : h.shape[1]]
        return self.encoder(h)


class TinyVit(nn.Module):
    """Vision transformer for small images (C, H, W): non-overlapping patches embedded by a strided conv."""

    def __init__(self, cfg, input_shape, num_classes):
        super().__init__()
        if len(input_shape) != 3:
            raise ModelLoadError(f"vit needs image input (C, H, W); data has shape {tuple(input_shape)}")
        c, h, w = (int(v) for v in input_shape)
        p = cfg.patch_size
        if h % p or w % p:
            raise ModelLoadError(f"vit: image {h}x{w} is not divisible into {p}x{p} patches (model.patch_size)")
        self.patch = nn.Conv2d(c, cfg.d_model, p, stride=p)
        n = (h // p) * (w // p) + (1 if cfg.pool == "cls" else 0)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model)) if cfg.pool == "cls" else None
        self.pos = nn.Parameter(torch.randn(1, n, cfg.d_model) * 0.02)
        self.encoder = Encoder(cfg, num_classes)

    def forward(self, x):
        h = self.patch(x).flatten(2).transpose(1, 2)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
        return self.encoder(h + self.pos)


def build_recurrent(cfg, input_shape, num_classes) -> nn.Module:
    model = RecurrentClassifier(cfg, input_shape, num_classes)
    axes = {0: ("batch", 1, MAX_DIM)}
    if cfg.dynamic_seq:
        axes[1] = ("seq", 1, MAX_DIM)
    return attach_input_spec(model, InputSpec(name="input", dtype="float32", dynamic_axes=axes))

