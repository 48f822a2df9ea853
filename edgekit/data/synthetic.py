"""Seeded synthetic sequence tasks, generated on the fly (no download): waveform shapes and token rules."""

from __future__ import annotations

import numpy as np

from edgekit.data.splits import Splits, make_splits


def load_waveforms(cfg, seed: int) -> Splits:
    x, y = waveforms(cfg, seed)
    return make_splits(x, y, cfg, seed, class_names=list(cfg.shapes), source="waveforms")


def load_tokens(cfg, seed: int) -> Splits:
    x, y = tokens(cfg, seed)
    names = ([f"token {i}" for i in range(cfg.classes)] if cfg.task == "majority"
             else ["absent", "present"] if cfg.task == "contains" else None)
    return make_splits(x, y, cfg, seed, class_names=names, source=f"tokens:{cfg.task}", integer_inputs=True,
                       vocab_size=cfg.vocab_size)


def _wave(shape: str, phase: np.ndarray) -> np.ndarray:
    """One period of `shape` at phase (in cycles, any real), values in [-1, 1]."""
    frac = phase - np.floor(phase)
    if shape == "sine":
        return np.sin(2 * np.pi * phase)
    if shape == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if shape == "sawtooth":
        return 2.0 * frac - 1.0
    if shape == "triangle":
        return 1.0 - 4.0 * np.abs(frac - 0.5)
    if shape == "pulse":
        return np.where(frac < 0.2, 1.0, -0.25)
    raise ValueError(f"unknown wave shape {shape}")


def waveforms(cfg, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x (N, seq_len, channels) float32: amplitude * shape(cycles * t + phase) + offset + noise; y the shape index."""
    rng = np.random.default_rng(seed)
    n, t_len, ch, k = cfg.samples, cfg.seq_len, cfg.channels, len(cfg.shapes)
    y = rng.permutation(np.arange(n) % k)
    t = np.linspace(0.0, 1.0, t_len, endpoint=False)[None, :, None]
    cycles = rng.uniform(*cfg.cycles, size=(n, 1, 1))
    phase = rng.uniform(0.0, 1.0, size=(n, 1, ch))
    amp = rng.uniform(0.5, 1.5, size=(n, 1, ch))
    offset = rng.normal(0.0, 0.2, size=(n, 1, ch))
    x = np.empty((n, t_len, ch))
    for i, shape in enumerate(cfg.shapes):
        m = y == i
        if shape == "chirp":  # frequency sweeps up to twice the start over the sequence
            x[m] = np.sin(2 * np.pi * (cycles[m] * (t + 0.5 * t * t) + phase[m]))
        else:
            x[m] = _wave(shape, cycles[m] * t + phase[m])
    x = amp * x + offset + rng.normal(0.0, cfg.noise, size=x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def tokens(cfg, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    n, t_len, vocab = cfg.samples, cfg.seq_len, cfg.vocab_size
    if cfg.task == "random":
        return rng.integers(0, vocab, size=(n, t_len)).astype(np.int64), None
    if cfg.task == "majority":
        return _majority(rng, n, t_len, vocab, cfg.classes)
    return _contains(rng, n, t_len, vocab)


def _majority(rng, n, t_len, vocab, k):
    """Markers 0..k-1 among filler ids k..vocab-1; the label's marker occurs strictly most often."""
    y = rng.permutation(np.arange(n) % k)
    cap = max(2, t_len // (3 * k))
    x = rng.integers(k, vocab, size=(n, t_len))
    for i in range(n):
        counts = rng.integers(0, cap + 1, size=k)
        counts[y[i]] = counts.max() + rng.integers(1, 3)
        ids = np.repeat(np.arange(k), counts)[: t_len]
        x[i, rng.choice(t_len, len(ids), replace=False)] = ids
    return x.astype(np.int64), y.astype(np.int64)


def _contains(rng, n, t_len, vocab):
    """Markers A=0 and B=1 (1-3 of each) among filler ids 2..; label 1 when some A is immediately followed by B."""
    y = rng.permutation(np.arange(n) % 2)
    x = rng.integers(2, vocab, size=(n, t_len))
    for i in range(n):
        while True:
            row = rng.integers(2, vocab, size=t_len)
            na, nb = rng.integers(1, 4, size=2)
            pos = rng.choice(t_len, na + nb, replace=False)
            row[pos[:na]], row[pos[na:]] = 0, 1
            if y[i] == 1:
                j = rng.integers(0, t_len - 1)
                row[j], row[j + 1] = 0, 1
            adjacent = bool(np.any((row[:-1] == 0) & (row[1:] == 1)))
            if adjacent == bool(y[i]):
                x[i] = row
                break
    return x.astype(np.int64), y.astype(np.int64)
