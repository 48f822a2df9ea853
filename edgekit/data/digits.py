"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, shipped inside the package."""

from __future__ import annotations

from edgekit.data.splits import Splits, make_splits


def load(cfg, seed: int) -> Splits:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).reshape(-1, 1, 8, 8)
    return make_splits(x, d.target, cfg, seed, class_names=[str(i) for i in range(10)], source="digits",
                       preprocess="8x8 grey pixel intensities (0-16) divided by 16")
