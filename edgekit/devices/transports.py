"""The transport registry: each name a profile's `transport` may take, the module that implements it (imported
by name when a device is used) and what it can do. Profiles validate against it; edgekit.devices dispatches
through it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransportEntry:
    """`impl`: the transport module. `remote`: the device is another machine, with its own packages and CPU (this
    machine's runtimes and CPU facts say nothing about it, and a failed bench may mean it dropped). `settings`: the
    profile section it needs (e.g. `ssh:`). `runs_agent`: it runs edgekit's bench agent, so any runtime the device
    has; False for a device tool (adb's benchmark_model) that runs only `formats` and takes threads as given."""

    impl: str
    remote: bool = False
    settings: str | None = None
    runs_agent: bool = True
    formats: tuple[str, ...] | None = None


TRANSPORTS: dict[str, TransportEntry] = {
    "local": TransportEntry("edgekit.devices.local"),
    "ssh": TransportEntry("edgekit.devices.ssh", remote=True, settings="ssh"),
    "adb": TransportEntry("edgekit.devices.adb", remote=True, settings="adb", runs_agent=False, formats=("tflite",)),
    "cuda": TransportEntry("edgekit.devices.cuda"),
}
