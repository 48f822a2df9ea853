"""Device profiles: YAML files in devices/, validated strictly like recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edgekit.config_base import Strict


class Budgets(Strict):
    max_latency_ms: float | None = Field(None, gt=0)
    max_size_mb: float | None = Field(None, gt=0)
    max_memory_mb: float | None = Field(None, gt=0)


class DeviceProfile(Strict):
    name: str
    kind: Literal["cpu", "gpu", "mobile", "embedded"] = "cpu"
    transport: Literal["local"] = "local"
    description: str = ""
    threads: int | None = Field(None, ge=1, description="intra-op threads (default: all usable cores)")
    affinity: list[int] | None = Field(None, description="CPU ids the bench process may run on")
    runtimes: list[str] = Field(default_factory=lambda: ["torch", "onnxruntime"])
    providers: list[str] | None = Field(None, description="ONNX Runtime execution providers, in order")
    budgets: Budgets = Field(default_factory=Budgets)


def search_dirs(extra: Path | None = None) -> list[Path]:
    dirs = [Path.cwd() / "devices", Path(__file__).resolve().parents[2] / "devices"]
    if extra is not None:
        dirs.insert(0, Path(extra))
    return dirs


def load_profile(name_or_path: str, extra_dir: Path | None = None) -> DeviceProfile:
    from edgekit.errors import RecipeError
    from edgekit.recipe import validate_yaml_file

    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        path = next((d / f"{name_or_path}.yaml" for d in search_dirs(extra_dir) if (d / f"{name_or_path}.yaml").is_file()),
                    None)
        if path is None:
            known = sorted({p.stem for d in search_dirs(extra_dir) if d.is_dir() for p in d.glob("*.yaml")})
            raise RecipeError(f"unknown device '{name_or_path}' (known: {known})", key="bench.devices")
    return validate_yaml_file(path, DeviceProfile)


def list_profiles(extra_dir: Path | None = None) -> list[DeviceProfile]:
    seen, out = set(), []
    for d in search_dirs(extra_dir):
        for p in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            if p.stem not in seen:
                seen.add(p.stem)
                out.append(load_profile(str(p)))
    return out
