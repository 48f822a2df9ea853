"""Facts about the host hardware: the CPU model, its ISA flags and the cores this process may use."""

from __future__ import annotations

import os
import platform

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "i8mm")
X86_MACHINES = ("x86_64", "amd64", "i686")


def cpu_info() -> dict:
    """{"model": the CPU's name, "isa": the ISA_FLAGS it reports} (from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "isa": sorted(f for f in ISA_FLAGS if f in flags)}


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the OS has one, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def is_x86() -> bool:
    return platform.machine().lower() in X86_MACHINES
