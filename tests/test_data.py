import gzip

import numpy as np
import pytest
from helpers import digits_splits

from edgekit.data import load_data
from edgekit.data.config import CsvData, FashionMnistData, ImageFolderData, NpzData
from edgekit.data.fashion_mnist import DEFAULT_DIRS, read_idx
from edgekit.errors import DataError


def test_digits_splits_are_disjoint_seeded_and_normalized():
    s = digits_splits()
    assert s.input_shape == (1, 8, 8) and s.num_classes == 10
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 1797
    assert abs(s.x_train.mean()) < 1e-3 and abs(s.x_train.std() - 1) < 1e-2  # train statistics only
    rows = lambda a: {r.tobytes() for r in a}  # noqa: E731
    assert rows(s.x_calib) <= rows(s.x_train)  # calibration comes from train, never test
    assert set(np.unique(s.y_test)) == set(range(10))  # stratified
    assert digits_splits().fingerprint() == s.fingerprint()
    assert digits_splits(seed=1).fingerprint() != s.fingerprint()


def test_limit_and_calibration_size():
    s = digits_splits(limit=300, calibration_size=32)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 300
    assert len(s.x_calib) == 32


def _write_idx(path, arr, code):
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(">u1" if code == 8 else arr.dtype).tobytes())


def test_idx_reader_and_fashion_mnist_layout(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (60, 28, 28), dtype=np.uint8), 8)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(60, dtype=np.uint8) % 10, 8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), 8)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(20, dtype=np.uint8) % 10, 8)
    assert read_idx(tmp_path / "train-images-idx3-ubyte.gz").shape == (60, 28, 28)
    s = load_data(FashionMnistData(source="fashion-mnist", path=tmp_path), 0)
    assert s.input_shape == (1, 28, 28) and len(s.y_test) == 20 and s.class_names[9] == "Ankle boot"


def test_idx_truncated_and_missing(tmp_path):
    bad = tmp_path / "x-idx1-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_data(FashionMnistData(source="fashion-mnist", path=tmp_path / "none"), 0)


@pytest.mark.skipif(not all((DEFAULT_DIRS[0] / f).exists() for f in ["t10k-labels-idx1-ubyte.gz"]),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_found_automatically():
    s = load_data(FashionMnistData(source="fashion-mnist", limit=2000), 0)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10 and len(s.y_test) > 0


def test_npz_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.normal(size=(100, 5)).astype(np.float32), y=np.arange(100) % 3)
    s = load_data(NpzData(source="npz", path=tmp_path / "a.npz"), 0)
    assert s.input_shape == (5,) and s.num_classes == 3
    np.savez(tmp_path / "b.npz", x_train=rng.normal(size=(80, 6, 6)), y_train=np.arange(80) % 2,
             x_test=rng.normal(size=(20, 6, 6)), y_test=np.arange(20) % 2)
    s = load_data(NpzData(source="npz", path=tmp_path / "b.npz"), 0)
    assert s.input_shape == (1, 6, 6) and len(s.y_test) == 20
    np.savez(tmp_path / "c.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError):
        load_data(NpzData(source="npz", path=tmp_path / "c.npz"), 0)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    s = load_data(ImageFolderData(source="image-folder", path=tmp_path, image_size=(8, 8)), 0)
    assert s.input_shape == (3, 8, 8) and s.class_names == ["cat", "dog"]
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_data(ImageFolderData(source="image-folder", path=tmp_path), 0)


def test_csv(tmp_path):
    lines = ["f1,f2,species"] + [f"{i * 0.1},{i % 7},{'ab'[i % 2]}" for i in range(50)]
    (tmp_path / "t.csv").write_text("\n".join(lines))
    s = load_data(CsvData(source="csv", path=tmp_path / "t.csv", label_column="species"), 0)
    assert s.input_shape == (2,) and s.class_names == ["a", "b"]
    (tmp_path / "bad.csv").write_text("f1,label\n1.0,0\nx,1\n")
    with pytest.raises(DataError, match="bad.csv:3"):
        load_data(CsvData(source="csv", path=tmp_path / "bad.csv"), 0)


def test_augmentation_changes_batches_but_keeps_shape():
    from edgekit.data.augment import augment_batch
    from edgekit.data.config import Augment

    x = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    out = augment_batch(x, Augment(shift=1, flip=True, noise=0.1), np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == np.float32 and not np.allclose(out, x)
    assert augment_batch(x, Augment(), np.random.default_rng(0)) is x
