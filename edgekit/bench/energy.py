"""Energy from Linux powercap/RAPL counters (/sys/class/powercap/intel-rapl:N/energy_uj), when readable.

Only package-level zones (intel-rapl:N, not their sub-zones) are summed, so no energy is counted twice. RAPL
measures the whole package: other work on the machine is included. Where no counter is readable the caller gets
None and reports nothing; energy is never estimated. Standard library only (it runs inside the bench agent).
"""

from __future__ import annotations

import glob
import os

ROOT = "/sys/class/powercap"


def _zones(root: str = ROOT) -> list[str]:
    return sorted(z for z in glob.glob(os.path.join(root, "intel-rapl:*")) if z.count(":") == 1)


def read_uj(root: str = ROOT) -> dict[str, tuple[int, int]] | None:
    """{zone: (energy_uj, max_energy_range_uj)} for every readable package zone, or None."""
    out = {}
    for z in _zones(root):
        try:
            with open(os.path.join(z, "energy_uj")) as f:
                e = int(f.read().strip())
            try:
                with open(os.path.join(z, "max_energy_range_uj")) as f:
                    rng = int(f.read().strip())
            except (OSError, ValueError):
                rng = 0
        except (OSError, ValueError):
            continue
        out[z] = (e, rng)
    return out or None


def delta_uj(before: dict | None, after: dict | None) -> int | None:
    """Energy between two readings, allowing for one counter wrap-around per zone."""
    if not before or not after:
        return None
    total = 0
    for z, (e0, rng) in before.items():
        if z not in after:
            return None
        d = after[z][0] - e0
        if d < 0:
            if not rng:
                return None
            d += rng
        total += d
    return total
