"""Seeded train/val/test/calibration splits with normalization fitted on the train split only."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edgekit.errors import DataError


@dataclass
class Splits:
    """Arrays ready for training and evaluation. Images are NCHW float32; tabular data is (N, F); sequences are
    (N, T, F) float32; token ids are (N, T) int64 (not normalized). Unlabelled data has every label -1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_calib: np.ndarray
    num_classes: int
    class_names: list[str]
    normalization: dict = field(default_factory=dict)
    source: str = ""
    augment: object = None
    vocab_size: int | None = None  # integer inputs: largest token id + 1 (or the source's declared vocabulary)
    labelled: bool = True
    preprocess: str = ""  # how raw inputs became the values normalized below (what a deployment must repeat)

    @classmethod
    def from_arrays(cls, x_calib: np.ndarray, x_val: np.ndarray, x_test: np.ndarray | None = None,
                    y_val: np.ndarray | None = None, y_test: np.ndarray | None = None, num_classes: int = 0) -> Splits:
        """Splits for a pass run outside a recipe (`edgekit.apply_pass`): calibration and validation inputs, test
        inputs if any, labels optional (unlabelled splits carry -1)."""
        x_test = x_val[:0] if x_test is None else x_test

        def labels(y, x):
            return np.full(len(x), -1, np.int64) if y is None else np.asarray(y)

        labelled = y_val is not None
        return cls(x_train=x_calib, y_train=np.full(len(x_calib), -1, np.int64), x_val=x_val, y_val=labels(y_val, x_val),
                   x_test=x_test, y_test=labels(y_test, x_test), x_calib=x_calib, num_classes=num_classes,
                   class_names=[str(i) for i in range(num_classes)], source="arrays", labelled=labelled)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    def fingerprint(self) -> str:
        """Content hash of every split, so a report says exactly which data it measured."""
        h = hashlib.sha256()
        for arr in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test, self.x_calib):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        return {
            "source": self.source,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "train": len(self.y_train),
            "val": len(self.y_val),
            "test": len(self.y_test),
            "calibration": len(self.x_calib),
            "input_dtype": str(self.x_train.dtype),
            **({"vocab_size": self.vocab_size} if self.vocab_size is not None else {}),
            **({} if self.labelled else {"labelled": False}),
            **({"preprocess": self.preprocess} if self.preprocess else {}),
            "normalization": self.normalization,
            "fingerprint": self.fingerprint(),
        }


def check_finite(x: np.ndarray, where: str, what: str = "x") -> None:
    """Refuse NaN, Inf and values beyond float32's range in float inputs, naming how many and where."""
    if x.dtype.kind != "f" or x.size == 0:
        return
    finite = np.isfinite(x)
    if x.dtype.itemsize > 4:
        finite &= np.abs(x) <= np.finfo(np.float32).max
    bad = x.size - int(np.count_nonzero(finite))
    if bad:
        first = int(np.argwhere(~finite)[0][0])
        raise DataError(f"{where}: {what} holds {bad} non-finite values (NaN, Inf or beyond float32) among {x.size}; "
                        f"the first in sample {first}")


def make_splits(
    x: np.ndarray,
    y: np.ndarray | None,
    cfg,
    seed: int,
    *,
    class_names: list[str] | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    source: str = "",
    integer_inputs: bool = False,
    vocab_size: int | None = None,
    preprocess: str = "",
) -> Splits:
    """Split (x, y) stratified and seeded; normalize with train statistics; draw calibration from train.

    If `test` is given (a dataset's official test set) it becomes the test split and only val is carved out.
    `integer_inputs`: x holds token ids, kept int64 and never normalized; `vocab_size` defaults to max id + 1.
    `y=None`: unlabelled data (labels -1, random rather than stratified splits); only fidelity metrics apply.
    """
    labelled = y is not None
    if integer_inputs:
        x = np.asarray(x)
        if x.dtype.kind not in "iu":
            raise DataError(f"{source}: integer_inputs needs integer token ids, got {x.dtype}")
        x = x.astype(np.int64)
        if test is not None:
            test = (np.asarray(test[0]).astype(np.int64), test[1])
        ids = [x] + ([test[0]] if test is not None else [])
        lo, hi = min(int(a.min()) for a in ids if a.size), max(int(a.max()) for a in ids if a.size)
        if lo < 0:
            raise DataError(f"{source}: token ids must be non-negative, found {lo}")
        if vocab_size is not None and hi >= vocab_size:
            raise DataError(f"{source}: token id {hi} is outside the vocabulary of {vocab_size}")
        vocab_size = vocab_size or hi + 1
    else:
        x = np.asarray(x, dtype=np.float32)
        check_finite(x, source)
        if test is not None:
            check_finite(np.asarray(test[0]), source, "x_test")
        vocab_size = None
    y = np.asarray(y).astype(np.int64) if labelled else np.full(len(x), -1, dtype=np.int64)
    if test is not None and test[1] is None:
        test = (test[0], np.full(len(test[0]), -1, dtype=np.int64))
    if len(x) != len(y):
        raise DataError(f"{source}: {len(x)} samples but {len(y)} labels")
    if len(x) < 10:
        raise DataError(f"{source}: only {len(x)} samples; need at least 10")
    rng = np.random.default_rng(seed)
    if cfg.limit is not None and len(x) > cfg.limit:
        keep = rng.choice(len(x), cfg.limit, replace=False)
        x, y = x[keep], y[keep]
        if test is not None:
            n_test = max(10, int(cfg.limit * cfg.test_fraction))
            tk = rng.choice(len(test[0]), min(n_test, len(test[0])), replace=False)
            test = (test[0][tk], test[1][tk])
    labels = sorted(set(y.tolist()) | (set(np.asarray(test[1]).tolist()) if test is not None else set()))
    if not labelled:
        labels = []
    if labels and (labels[0] < 0):
        raise DataError(f"{source}: labels must be non-negative integers, found {labels[0]}")
    num_classes = int(max(labels)) + 1 if labels else 0
    if test is None:
        x_rest, y_rest, x_test, y_test = _stratified_take(x, y, cfg.test_fraction, rng)
        val_share = cfg.val_fraction / (1.0 - cfg.test_fraction)
    else:
        x_rest, y_rest = x, y
        x_test, y_test = np.asarray(test[0], dtype=x.dtype), np.asarray(test[1]).astype(np.int64)
        val_share = cfg.val_fraction
    if val_share > 0:
        x_train, y_train, x_val, y_val = _stratified_take(x_rest, y_rest, val_share, rng)
    else:
        x_train, y_train, x_val, y_val = x_rest, y_rest, x_rest[:0], y_rest[:0]
    kind = "none" if integer_inputs else cfg.normalize
    norm = _fit_normalization(x_train, kind)
    if not integer_inputs:
        x_train, x_val, x_test = (_apply(a, norm) for a in (x_train, x_val, x_test))
    n_cal = min(cfg.calibration_size, len(x_train))
    x_calib = x_train[rng.choice(len(x_train), n_cal, replace=False)]
    names = class_names or [str(i) for i in range(num_classes)]
    return Splits(
        x_train, y_train, x_val, y_val, x_test, y_test, x_calib,
        num_classes=num_classes, class_names=names, source=source, augment=cfg.augment, vocab_size=vocab_size,
        normalization=_describe(norm, kind) if not integer_inputs else {"kind": "none (integer token ids)"},
        labelled=labelled, preprocess=preprocess,
    )


def _stratified_take(x, y, fraction, rng):
    """Take `fraction` of each class out (at least one per class when a class has two or more samples)."""
    take = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        take.append(idx[:k])
    taken = np.concatenate(take) if take else np.array([], dtype=np.int64)
    mask = np.zeros(len(y), dtype=bool)
    mask[taken] = True
    rest, out = np.flatnonzero(~mask), np.flatnonzero(mask)
    rng.shuffle(rest)
    rng.shuffle(out)
    return x[rest], y[rest], x[out], y[out]


def _fit_normalization(x_train: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    if kind == "none":
        return None
    axes = (0, 2, 3) if x_train.ndim == 4 else (0, 1) if x_train.ndim == 3 else (0,)
    if kind == "standard":
        shift = x_train.mean(axis=axes, keepdims=True)
        scale = x_train.std(axis=axes, keepdims=True)
    else:
        shift = x_train.min(axis=axes, keepdims=True)
        scale = x_train.max(axis=axes, keepdims=True) - shift
    scale = np.where(scale < 1e-8, 1.0, scale)
    return shift.astype(np.float32), scale.astype(np.float32)


def _apply(x: np.ndarray, norm) -> np.ndarray:
    if norm is None:
        return np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray((x - norm[0]) / norm[1], dtype=np.float32)


def _describe(norm, kind: str) -> dict:
    """Every channel's (or feature's) shift and scale at float32 precision: x_model = (x - shift) / scale."""
    if norm is None:
        return {"kind": "none"}
    axis = {4: "channel (axis 1)", 3: "feature (last axis)"}.get(norm[0].ndim, "feature (axis 1)")
    return {"kind": kind, "per": axis, "shift": [float(f"{v:.8g}") for v in norm[0].ravel()],
            "scale": [float(f"{v:.8g}") for v in norm[1].ravel()]}
