"""CSV with a header; the label column (if any) holds class names or integers; rows are features, a univariate
sequence, or token ids."""

from __future__ import annotations

import csv as _csv

import numpy as np

from edgekit.data.splits import Splits, check_finite, make_splits
from edgekit.errors import DataError
from edgekit.limits import over_limit


def load(cfg, seed: int) -> Splits:
    if not cfg.path.is_file():
        raise DataError(f"{cfg.path}: CSV file not found")
    too_big = over_limit(cfg.path.stat().st_size, "EDGEKIT_MAX_DATA_BYTES", "the CSV file")
    if too_big:
        raise DataError(f"{cfg.path}: {too_big}")
    with open(cfg.path, newline="") as f:
        reader = _csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{cfg.path}: empty CSV file") from None
        if cfg.label_column is not None and cfg.label_column not in header:
            raise DataError(f"{cfg.path}: label column '{cfg.label_column}' not in header {header}")
        li = header.index(cfg.label_column) if cfg.label_column is not None else -1
        feats, labels = [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{cfg.path}:{lineno}: {len(row)} fields, header has {len(header)}")
            try:
                feats.append([float(v) for i, v in enumerate(row) if i != li])
            except ValueError as e:
                raise DataError(f"{cfg.path}:{lineno}: non-numeric feature: {e}") from e
            labels.append(row[li].strip() if li >= 0 else "")
    if not labels:
        raise DataError(f"{cfg.path}: no data rows")
    x = np.array(feats, dtype=np.float64)
    check_finite(x, str(cfg.path), "the features")
    if cfg.layout == "tokens":
        if not np.all(x == np.round(x)):
            raise DataError(f"{cfg.path}: layout tokens needs integer ids in every feature column")
        x = x.astype(np.int64)
    elif cfg.layout == "sequence":
        x = x[:, :, None]
    common = {"source": f"csv:{cfg.path.name}", "integer_inputs": cfg.layout == "tokens", "vocab_size": cfg.vocab_size}
    if li < 0:
        return make_splits(x, None, cfg, seed, **common)
    if all(v.lstrip("-").isdigit() for v in labels):
        y = np.array([int(v) for v in labels])
        names = [str(i) for i in range(int(y.max()) + 1)]
    else:
        names = sorted(set(labels))
        y = np.array([names.index(v) for v in labels])
    return make_splits(x, y, cfg, seed, class_names=names, **common)
