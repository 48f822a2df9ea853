"""Device profiles: YAML files in devices/, validated strictly like recipes.

A profile says where a bench runs (transport and its connection), with which runtimes, execution providers or
TFLite delegate, threads and CPU affinity, the device's peak compute and memory bandwidth (datasheet figures in
`peaks`, probed ones in `measured`) and its budgets. `edgekit devices probe NAME` writes the measured peaks to a
sidecar `<profile>.measured.yaml` beside the profile, so the hand-written file and its comments stay untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edgekit.config_base import Strict
from edgekit.devices.fields import BenchmarkFlag, Host, OptionPath, PathText, Serial, SshConfigPath, Text, User
from edgekit.devices.transports import TRANSPORTS
from edgekit.names import Name, name_problem

MEASURED_SUFFIX = ".measured.yaml"
MAX_THREADS, MAX_CPU_ID = 1024, 8191


def _finite(default=None, **kw):
    return Field(default=default, gt=0, allow_inf_nan=False, **kw)


class Budgets(Strict):
    max_latency_ms: float | None = _finite()
    max_size_mb: float | None = _finite()
    max_memory_mb: float | None = _finite()


class SshSettings(Strict):
    """How to reach a Linux device over ssh. Keys come from the user's ssh config/agent or `identity_file`;
    host keys are always checked (against `known_hosts` when given, else the user's). Every value is checked
    when the profile loads (edgekit/devices/fields.py): none can reach ssh as an option."""

    host: Host = Field(description="DNS name, ssh config alias, IPv4 or IPv6 address")
    port: int = Field(default=22, ge=1, le=65535, strict=True)
    user: User | None = None
    identity_file: PathText | None = Field(default=None, description="private key file (default: ssh config / agent)")
    known_hosts: OptionPath | None = Field(default=None, description="known_hosts file holding the device's host key")
    ssh_config: SshConfigPath | None = Field(
        default=None, description="ssh config file to use instead of ~/.ssh/config (ssh -F); connection and host-key "
                                  "keywords only")
    python: PathText = Field(default="python3", description="Python interpreter on the device")
    workdir: PathText = Field(default="/tmp", description="where a temporary bench folder is created on the device")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=3600)


class AdbSettings(Strict):
    """An Android device over adb, benchmarked with TFLite's `benchmark_model` binary already on the device."""

    serial: Serial | None = Field(default=None, description="adb serial (needed when several devices are attached)")
    adb: str | None = Field(default=None, exclude=True, description="not read: the adb client is $EDGEKIT_ADB or `adb` "
                                                                    "on PATH")
    benchmark_model: PathText = Field(default="/data/local/tmp/benchmark_model",
                                      description="benchmark_model path on the device")
    workdir: PathText = Field(default="/data/local/tmp/edgekit", description="where models are pushed")
    report_peak_memory: bool = Field(default=True, description="pass --report_peak_memory_footprint=true (newer builds)")
    extra_flags: list[BenchmarkFlag] = Field(default_factory=list, description="more benchmark_model flags, e.g. "
                                                                               "--nnapi_accelerator_name=qti-dsp")

    @field_validator("adb")
    @classmethod
    def _no_local_program(cls, value):
        if value is not None:
            raise PydanticCustomError("local_program", "a device profile cannot choose a program to run on this "
                                      "machine: set the EDGEKIT_ADB environment variable, or put adb on PATH")
        return value


class CudaSettings(Strict):
    device_index: int = Field(default=0, ge=0, le=255)
    torch_dtype: Literal["fp32", "fp16"] = Field(default="fp32", description="precision PyTorch artifacts run in")


class OpenVinoSettings(Strict):
    """How the `openvino` runtime runs ONNX files on this device's CPU."""

    precision: Literal["f32", "bf16"] = Field(
        default="f32", description="the CPU plugin's inference precision: f32 (the honest fp32 baseline), or bf16 where the "
                                   "CPU has it (OpenVINO's own default on AMX CPUs; rows are labelled bf16)")


class Peaks(Strict):
    """Peak throughput the roofline uses: GFLOP/s (fp32, fp16), GOP/s (int8, multiply and add counted apart)
    and memory bandwidth in GB/s. `source` says where the numbers come from."""

    fp32_gflops: float | None = _finite()
    fp16_gflops: float | None = _finite()
    int8_gops: float | None = _finite()
    mem_bandwidth_gbs: float | None = _finite()
    source: Text = ""


class MeasuredPeaks(Peaks):
    measured_at: Text = ""
    details: dict[str, Any] = Field(default_factory=dict)


class MeasuredFile(Strict):
    """The sidecar `<profile>.measured.yaml` written by `edgekit devices probe`."""

    name: Name
    measured: MeasuredPeaks


class DeviceProfile(Strict):
    name: Name
    kind: Literal["cpu", "gpu", "mobile", "embedded"] = "cpu"
    transport: Name = Field(default="local", description="how edgekit reaches the device (a name in "
                                                         "edgekit.devices.transports.TRANSPORTS)",
                            json_schema_extra=lambda schema: schema.update(enum=list(TRANSPORTS)))
    description: Text = ""
    threads: int | None = Field(default=None, ge=1, le=MAX_THREADS,
                                description="intra-op threads (default: all usable cores)")
    affinity: list[Annotated[int, Field(le=MAX_CPU_ID)]] | None = Field(
        default=None, description="CPU ids the bench process may run on")
    runtimes: list[Name] = Field(default_factory=lambda: ["torch", "onnxruntime"])
    providers: list[Name] | None = Field(default=None, description="ONNX Runtime execution providers, in order")
    delegate: Literal["xnnpack", "gpu", "nnapi", "none"] | None = Field(
        default=None, description="TFLite delegate (adb: passed to benchmark_model; default xnnpack)")
    ssh: SshSettings | None = None
    adb: AdbSettings | None = None
    cuda: CudaSettings | None = None
    openvino: OpenVinoSettings | None = Field(default=None, description="openvino runtime settings (default: f32)")
    peaks: Peaks = Field(default_factory=Peaks, description="datasheet figures, with their source")
    measured: MeasuredPeaks | None = Field(default=None, description="filled by `edgekit devices probe` (sidecar file)")
    budgets: Budgets = Field(default_factory=Budgets)
    emulated: bool = Field(default=False, description="an emulated device (e.g. qemu-user): its outputs are real, its "
                                                      "timings mean nothing, so its rows stay out of latency gates and "
                                                      "speed-ups")

    _path: Path | None = PrivateAttr(None)

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, v: str) -> str:
        if v not in TRANSPORTS:
            raise ValueError(f"unknown transport '{v}' (known: {', '.join(TRANSPORTS)})")
        return v

    @model_validator(mode="after")
    def _transport_settings(self):
        needed = TRANSPORTS[self.transport].settings
        if needed and getattr(self, needed, None) is None:
            raise ValueError(f"transport '{self.transport}' needs an `{needed}:` section (see docs/devices.md)")
        for name, entry in TRANSPORTS.items():
            key = entry.settings
            if key and name != self.transport and getattr(self, key, None) is not None:
                raise ValueError(f"`{key}:` settings are given but transport is '{self.transport}'")
        if self.affinity is not None and (not self.affinity or min(self.affinity) < 0):
            raise ValueError("affinity must list CPU ids >= 0")
        for name, key in _runtime_settings().items():
            if getattr(self, key, None) is not None and name not in self.runtimes:
                raise ValueError(f"`{key}:` settings are given but `runtimes` does not list {name}")
        return self

    def runtime_options(self, runtime: str) -> dict[str, Any]:
        """Keyword arguments the named runtime's `load` takes from this profile."""
        key = _runtime_settings().get(runtime)
        section = getattr(self, key, None) if key else None
        return section.model_dump() if section is not None else {}

    @property
    def path(self) -> Path | None:
        return self._path

    def effective_peaks(self) -> dict[str, Any]:
        """Each peak from `measured` when probed, else from the datasheet `peaks`; `basis` says which."""
        out: dict[str, Any] = {"basis": {}}
        for key in ("fp32_gflops", "fp16_gflops", "int8_gops", "mem_bandwidth_gbs"):
            m = getattr(self.measured, key) if self.measured else None
            d = getattr(self.peaks, key)
            out[key] = m if m is not None else d
            out["basis"][key] = "measured" if m is not None else ("datasheet" if d is not None else None)
        return out


def _runtime_settings() -> dict[str, str]:
    """{runtime: the profile section holding its load options} for the runtimes that take any."""
    from edgekit.runtimes import RUNTIMES

    return {name: e.settings for name, e in RUNTIMES.items() if e.settings}


def search_dirs(extra: Path | None = None) -> list[Path]:
    """Where profiles are looked up, first match first: `extra`, `./devices`, then those shipped in the package."""
    dirs = [Path.cwd() / "devices", shipped_dir()]
    if extra is not None:
        dirs.insert(0, Path(extra))
    return dirs


def shipped_dir() -> Path:
    """Where the profiles that come with edgekit live (inside the installed package: never written to)."""
    from importlib.resources import files

    return Path(str(files("edgekit.devices") / "profiles"))


def sidecar_path(profile_path: Path) -> Path:
    """The measured-peaks sidecar of a profile: beside a profile of yours; for a shipped profile, in ./devices (an
    installed package is not a place to write)."""
    path = Path(profile_path)
    if path.resolve().parent == shipped_dir().resolve():
        return Path.cwd() / "devices" / (path.stem + MEASURED_SUFFIX)
    return path.with_name(path.stem + MEASURED_SUFFIX)


def _profile_files(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("*.yaml") if not p.name.endswith(MEASURED_SUFFIX)) if d.is_dir() else []


def _validated(path: Path, model):
    """`model` read from the YAML file `path`; any problem is a DeviceError naming the file, key and line."""
    from edgekit.errors import DeviceError, RecipeError
    from edgekit.yaml_config import validate_yaml_file

    try:
        return validate_yaml_file(path, model)
    except DeviceError:
        raise
    except RecipeError as e:
        raise DeviceError(e.message, path=e.path, key=e.key, line=e.line) from None


def load_profile(name_or_path: str, extra_dir: Path | None = None, name_only: bool = False) -> DeviceProfile:
    """A profile by file path or by name (searched in `search_dirs`). A malformed or unsafe profile is a
    DeviceError naming the file and key; an unknown name is a RecipeError. `name_only` refuses paths: for device
    names read from a report, which must not pick a profile file of their own."""
    from edgekit.errors import DeviceError, RecipeError

    candidate = Path(name_or_path)
    if not name_only and candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        if not name_only and candidate.suffix in (".yaml", ".yml"):
            raise RecipeError("device profile not found", path=name_or_path, key="bench.devices")
        why = name_problem(name_or_path)
        if why:
            raise DeviceError(f"device {why}", key="bench.devices")
        path = next((d / f"{name_or_path}.yaml" for d in search_dirs(extra_dir) if (d / f"{name_or_path}.yaml").is_file()),
                    None)
        if path is None:
            known = sorted({p.stem for d in search_dirs(extra_dir) for p in _profile_files(d)})
            raise RecipeError(f"unknown device '{name_or_path}' (known: {known})", key="bench.devices")
    profile = _validated(path, DeviceProfile)
    side = sidecar_path(path)
    if side.is_file():
        measured = _validated(side, MeasuredFile)
        if measured.name != profile.name:
            raise DeviceError(f"measured peaks are for '{measured.name}', not '{profile.name}'", path=str(side),
                              key="name", line=1)
        profile.measured = measured.measured
    profile._path = path.resolve()
    return profile


def list_profiles(extra_dir: Path | None = None) -> list[DeviceProfile]:
    seen, out = set(), []
    for d in search_dirs(extra_dir):
        for p in _profile_files(d):
            if p.stem not in seen:
                seen.add(p.stem)
                out.append(load_profile(str(p)))
    return out
