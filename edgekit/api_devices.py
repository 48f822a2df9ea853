"""The Python API for devices and this machine: profiles, checks, probes, `init` and `env` (re-exported by
edgekit.api)."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import EdgekitError


def devices() -> list:
    """The known device profiles."""
    from edgekit.devices import list_profiles

    return list_profiles()


def device(name: str) -> dict:
    """One profile with its defaults (and, for this machine, the detected CPU), as plain data."""
    from edgekit.devices import load_profile, transport_entry

    p = load_profile(name)
    data = p.model_dump(mode="json")
    if not transport_entry(p).remote:
        from edgekit.hardware import cpu_info, usable_cores

        data["detected"] = {**cpu_info(), "usable_cores": usable_cores()}
    data["_path"] = str(p.path) if p.path else None
    return data


def device_check(name: str) -> dict:
    """Is the device reachable, and which of its runtimes import there?"""
    from edgekit.devices import check, load_profile

    return check(load_profile(name))


def device_probe(name: str, mem_mb: int = 256, size: int = 1024, out: Path | None = None,
                 dry_run: bool = False) -> dict:
    """Measure peak GEMM throughput and memory bandwidth on a device; unless `dry_run`, store them beside the
    datasheet peaks. Returns {"rows": [(key, measured, datasheet)], "source": ..., "written": path or None}."""
    from edgekit.devices import load_profile
    from edgekit.devices.probe import probe, write_measured

    p = load_profile(name)
    m = probe(p, mem_mb=mem_mb, gemm={"m": size, "n": size, "k": size})
    rows = [(k, getattr(m, k), getattr(p.peaks, k)) for k in ("fp32_gflops", "fp16_gflops", "int8_gops",
                                                               "mem_bandwidth_gbs")]
    written = None if dry_run else write_measured(p, m, Path(out) if out else None)
    return {"rows": [r for r in rows if r[1] is not None or r[2] is not None], "source": m.source, "written": written}


def init(dest: Path | str, force: bool = False) -> list[Path]:
    """Copy the starter recipe (quickstart.yaml) and the shipped device profiles (devices/*.yaml) into `dest`.

    Refuses to overwrite an existing file unless `force`; returns the files written."""
    from importlib.resources import files

    from edgekit.atomic import atomic_write_text
    from edgekit.devices.profile import MEASURED_SUFFIX
    from edgekit.names import check_name, safe_target

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise EdgekitError(f"{dest} exists and is not a folder")
    if not dest.exists():
        check_name(dest.name, "folder name")
    profiles = files("edgekit.devices") / "profiles"
    sources = [(files("edgekit") / "recipes" / "quickstart.yaml", "quickstart.yaml")]
    sources += [(p, f"devices/{p.name}") for p in sorted(profiles.iterdir(), key=lambda p: p.name)
                if p.name.endswith(".yaml") and not p.name.endswith(MEASURED_SUFFIX)]
    targets = [safe_target(dest, rel, "init") for _, rel in sources]
    existing = [str(dest / rel) for (_, rel), target in zip(sources, targets) if target.exists()]
    if existing and not force:
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise EdgekitError(f"{', '.join(existing[:3])}{more} already exist: pass --force to overwrite")
    for (src, _), target in zip(sources, targets):
        atomic_write_text(target, src.read_text(encoding="utf-8"))
    return [dest / rel for _, rel in sources]


def env() -> dict:
    """What a bug report needs: versions, the CPU and its ISA flags, which runtimes and ONNX Runtime providers load
    (imported in a fresh interpreter), and which extras are missing with the pip command that adds them."""
    import subprocess
    import sys

    from edgekit import __version__
    from edgekit.bench.environment import PACKAGES, fingerprint
    from edgekit.child_python import child_env, python_argv
    from edgekit.devices.base import check_code, parse_check_output
    from edgekit.extras import Needs, installed_version

    out = fingerprint()
    out["edgekit"] = __version__
    out["executable"] = sys.executable
    requirements = _declared_requirements()
    names = dict.fromkeys([*PACKAGES, "onnxscript", "pydantic", "typer",
                           *(n for reqs in (requirements or {}).values() for n in reqs)])
    names.pop("edgekit", None)
    out["packages"] = {n: installed_version(n) for n in names}
    try:
        proc = subprocess.run(python_argv("-c", check_code()), capture_output=True, text=True, timeout=300,
                              env=child_env())
        out["modules"], out["modules_error"] = parse_check_output(proc.stdout)["modules"], None
    except (subprocess.TimeoutExpired, OSError, EdgekitError) as e:
        out["modules"], out["modules_error"] = {}, f"{type(e).__name__}: {e}"
    out["required_missing"] = [n for n in (requirements or {}).get("", []) if out["packages"].get(n) is None]
    out["extras_missing"] = None if requirements is None else {}
    for extra, reqs in (requirements or {}).items():
        missing = [n for n in reqs if n != "edgekit" and out["packages"].get(n) is None]
        if extra and missing:
            out["extras_missing"][extra] = {"missing": missing, "install": Needs(extra, ()).install}
    return out


def _declared_requirements() -> dict[str, list[str]] | None:
    """edgekit's declared requirements by extra ('' for the core), as distribution names; None when edgekit is not
    installed (imported from a source tree)."""
    import re
    from importlib import metadata

    try:
        reqs = metadata.requires("edgekit") or []
    except metadata.PackageNotFoundError:
        return None
    out: dict[str, list[str]] = {}
    for req in reqs:
        name = re.match(r"[A-Za-z0-9._-]+", req.strip())
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if name:
            out.setdefault(extra.group(1) if extra else "", []).append(name.group(0))
    return out
