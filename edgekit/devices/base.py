"""What every transport shares: the unreachable-device error and the environment check run on a device."""

from __future__ import annotations

import json

from edgekit.errors import BenchError, DeviceUnreachable  # noqa: F401 (re-exported for transports)


def check_modules() -> dict[str, str]:
    """{label: import name} a device check imports: numpy, then what each registered runtime declares."""
    from edgekit.runtimes import RUNTIMES

    return {"numpy": "numpy", **{label: mod for e in RUNTIMES.values() for label, mod in e.imports.items()}}

CHECK_SNIPPET = r"""
import importlib, json, os, platform, sys
print("EDGEKIT-CHECK " + json.dumps({"python": platform.python_version(), "machine": platform.machine(),
      "os": platform.platform(), "cpus": os.cpu_count(),
      "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}), flush=True)
def _dist_version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return "?"
for name, mod in %(mods)s.items():
    info = {}
    try:
        m = importlib.import_module(mod)
        info["version"] = str(getattr(m, "__version__", None) or _dist_version(name))
        if mod == "onnxruntime":
            info["providers"] = m.get_available_providers()
        if mod == "torch":
            info["cuda"] = bool(m.cuda.is_available())
            if info["cuda"]:
                info["cuda_device"] = m.cuda.get_device_name(0)
    except BaseException as e:
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        info = {"error": (type(e).__name__ + ": " + text).rstrip(": ")}
    print("EDGEKIT-MODULE " + name + " " + json.dumps(info), flush=True)
"""
"""Run on the device by `edgekit devices check`: one line per module, flushed, so a module that crashes the
interpreter (a native extension built for another numpy) loses only the modules after it."""


def check_code(modules: dict[str, str] | None = None) -> str:
    return CHECK_SNIPPET % {"mods": repr(modules or check_modules())}

def parse_check_output(text: str) -> dict:
    env: dict | None = None
    modules: dict = {}
    for line in text.splitlines():
        if line.startswith("EDGEKIT-CHECK "):
            env = json.loads(line[len("EDGEKIT-CHECK "):])
        elif line.startswith("EDGEKIT-MODULE "):
            name, _, info = line[len("EDGEKIT-MODULE "):].partition(" ")
            modules[name] = json.loads(info)
    if env is None:
        raise BenchError(f"the device check printed no result: {text.strip()[-300:]}")
    for name in check_modules():
        if name not in modules:
            modules[name] = {"error": "the interpreter died importing this or an earlier module"}
            break
    env["modules"] = modules
    return env

def runtime_status(modules: dict, runtime: str) -> dict:
    """Whether an edgekit runtime imports on the device: {'importable', 'detail'} (version or the import error)."""
    if "version" not in modules.get("numpy", {}):
        return {"importable": False, "detail": f"numpy: {modules.get('numpy', {}).get('error', 'missing')}"}
    from edgekit.runtimes import RUNTIMES

    labels = tuple(RUNTIMES[runtime].imports) if runtime in RUNTIMES else (runtime,)
    if not labels:
        return {"importable": True, "detail": "numpy only"}
    errors = []
    for mod in labels:
        info = modules.get(mod, {})
        if "version" in info:
            return {"importable": True, "detail": f"{mod} {info['version']}"}
        errors.append(f"{mod}: {info.get('error', 'not checked')}")
    return {"importable": False, "detail": "; ".join(errors)}

def summarize_check(profile, env: dict) -> dict:
    """The answer of `edgekit devices check`: reachable, and which of the profile's runtimes import there."""
    modules = env.get("modules", {})
    ort = modules.get("onnxruntime", {})
    available = ort.get("providers")
    return {"device": profile.name, "transport": profile.transport, "reachable": True,
            "environment": {k: v for k, v in env.items() if k != "modules"},
            "runtimes": {rt: runtime_status(modules, rt) for rt in profile.runtimes},
            "providers_available": available,
            "providers_missing": [p for p in (profile.providers or []) if available is not None and p not in available],
            "modules": modules}

def unreachable(profile, reason: str) -> dict:
    return {"device": profile.name, "transport": profile.transport, "reachable": False, "reason": reason}
