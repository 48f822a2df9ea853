"""Natural photographs (animals, objects, monuments, scenes) that Debian packages ship, for int8 evaluation.

`int8_mobile_cnn.py` needs photos, not clip-art: on Tux Paint stamps fp32 EfficientNet-Lite0 is unsure (median
top-1 probability 0.30) and any perturbation flips near-ties. Each photo below was checked by eye; drawings,
paintings, renders and abstract wallpapers are left out. Nothing is downloaded or committed: the photos are read
from installed packages and written once to a cache folder.

    apt-get install --no-install-recommends gcompris-qt-data jigzo-data palapeli-data \\
        lomiri-wallpapers-16.04 lomiri-wallpapers-20.04

gcompris-qt-data (267 photos) keeps its images as WebP inside Qt binary resource files (.rcc); `read_rcc` parses
that format (header "qres", big-endian tree of 14/22-byte nodes, UTF-16 names, optionally zlib-compressed data).
jigzo's puzzles (12) embed a 1024x1024 JPEG whose picture area is given by an `image x y w h` header line.
Licences are per package (mostly public domain / CC0 / CC-BY(-SA) / GPL; one jigzo puzzle is CC-BY-NC-SA).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

SHARE = Path("/usr/share")
JPEG = b"\xff\xd8\xff"
INSTALL = ("apt-get install --no-install-recommends gcompris-qt-data jigzo-data palapeli-data "
           "lomiri-wallpapers-16.04 lomiri-wallpapers-20.04")

# gcompris .rcc file -> resource paths of its photos
GCOMPRIS = {
    "explore_farm_animals": r"/resource/animals/[^/]+\.webp$",
    "explore_world_animals": r"/resource/animals/[^/]+\.webp$",
    "erase": r"/resource/[^/]+\.webp$",
    "categorization": r"/resource/images/(fishes|monuments|renewable|tools|others|alphabets|numbers)/[^/]+\.webp$",
    "explore_monuments": r"/resource/[^/]+/[^/]+\.webp$",
    "explore_world_music": r"/resource/music/[^/]+\.webp$",
    "details": r"/resource/image/[^/]+_background\.webp$",
}
# paintings among the "details" backgrounds; monuments that explore_monuments already has
GCOMPRIS_SKIP = re.compile(r"Gogh|Eglise|PereTanguy|images/monuments/(brandenburgGate|colosseum|greatPyramid)\.",
                           re.I)
LOMIRI = ["Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
          "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
          "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
          "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
          "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg", "Kleiber_by_Lukas_Baubkus.jpg"]


def read_rcc(path: Path) -> Iterator[tuple[str, bytes]]:
    """(resource path, bytes) of every file in a Qt binary resource file (format versions 1-3)."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node = 14 if version == 1 else 22

    def name(off: int) -> str:
        n = struct.unpack(">H", b[names + off: names + off + 2])[0]
        return b[names + off + 6: names + off + 6 + 2 * n].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        idx, prefix = stack.pop()
        p = tree + idx * node
        name_off, flags = struct.unpack(">IH", b[p: p + 6])
        full = f"{prefix}/{name(name_off)}" if idx else ""
        if flags & 2:  # directory: children are consecutive nodes
            count, first = struct.unpack(">II", b[p + 6: p + 14])
            stack.extend((c, full) for c in reversed(range(first, first + count)))
            continue
        q = data + struct.unpack(">I", b[p + 10: p + 14])[0]
        size = struct.unpack(">I", b[q: q + 4])[0]
        payload = b[q + 4: q + 4 + size]
        if flags & 4:  # Qt 6 rcc may use zstd; Debian 12's GCompris (Qt 5) does not
            raise ValueError(f"{path}: {full} is zstd-compressed (Qt 6 resource files are not supported)")
        if flags & 1:  # qCompress: 4-byte length, then zlib
            payload = zlib.decompress(payload[4:])
        yield full, payload


def _gcompris(root: Path) -> Iterator[tuple[str, str, bytes]]:
    d = root / "gcompris-qt/rcc"
    for rcc, pattern in GCOMPRIS.items():
        f = d / f"{rcc}.rcc"
        if not f.exists():
            continue
        for path, data in sorted(read_rcc(f)):
            if re.search(pattern, path) and not GCOMPRIS_SKIP.search(path):
                parts = path.split("/")
                yield "gcompris", f"{rcc}__{parts[-2]}_{parts[-1]}", data


def _jigzo(root: Path) -> Iterator[tuple[str, str, bytes]]:
    from PIL import Image

    for f in sorted((root / "games/jigzo/puzzles").glob("*/*.pzl")):
        b = f.read_bytes()
        m = re.search(rb"\nimage (\d+) (\d+) (\d+) (\d+)", b)
        starts = [s.start() for s in re.finditer(re.escape(JPEG), b)]
        if not m or not starts:
            continue
        x, y, w, h = map(int, m.groups())
        im = Image.open(io.BytesIO(b[starts[-1]:])).convert("RGB").crop((x, y, x + w, y + h))
        buf = io.BytesIO()
        im.save(buf, "PNG")
        yield "jigzo", f.stem.split("-")[0] + ".png", buf.getvalue()


def _plain(root: Path) -> Iterator[tuple[str, str, bytes]]:
    for f in sorted((root / "palapeli/collection").glob("*.jpg")):
        yield "palapeli", f.name, f.read_bytes()
    for n in LOMIRI:
        if (root / "backgrounds" / n).exists():
            yield "lomiri", n, (root / "backgrounds" / n).read_bytes()


def photo_list(cache: Path, root: Path = SHARE) -> list[tuple[str, str]]:
    """(source, file) of every photo found, written once under `cache` (JPEG/PNG, alpha flattened on white)."""
    from PIL import Image

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for gen in (_gcompris, _jigzo, _plain):
        for source, name, data in gen(root):
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).rsplit(".", 1)[0]
            jpeg = data[:3] == JPEG
            dst = cache / source / (stem + (".jpg" if jpeg else ".png"))
            if not dst.exists():
                dst.parent.mkdir(exist_ok=True)
                if jpeg:
                    dst.write_bytes(data)
                else:
                    im = Image.open(io.BytesIO(data))
                    if im.mode in ("RGBA", "LA", "P"):
                        im = im.convert("RGBA")
                        bg = Image.new("RGB", im.size, "white")
                        bg.paste(im, mask=im.split()[-1])
                        im = bg
                    tmp = dst.with_suffix(".tmp")
                    im.convert("RGB").save(tmp, "PNG")
                    tmp.replace(dst)
            out.append((source, str(dst)))
    return out


if __name__ == "__main__":
    import collections
    import sys

    photos = photo_list(Path.home() / ".cache/edgekit/natural_photos")
    print(dict(collections.Counter(s for s, _ in photos)), len(photos), file=sys.stderr)
    if len(photos) < 250:
        sys.exit(f"only {len(photos)} photos; install them with:\n  {INSTALL}")
