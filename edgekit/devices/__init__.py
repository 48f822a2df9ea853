"""Devices: where a runtime runs. Transports are chosen by the profile's `transport`.

Each transport module provides `run_agent(job, timeout_s, profile)` (run one agent job, return its result dict,
raise BenchError / DeviceUnreachable), `check(profile)` (reachable? which runtimes import there?) and optionally
`reachable(profile)` (a quick None-or-reason test; transports without it are always reachable).
"""

from __future__ import annotations

from edgekit.devices.profile import DeviceProfile, list_profiles, load_profile

TRANSPORTS = {
    "local": "edgekit.devices.local",
    "ssh": "edgekit.devices.ssh",
    "adb": "edgekit.devices.adb",
    "cuda": "edgekit.devices.cuda",
}


def transport_module(profile: DeviceProfile):
    import importlib

    return importlib.import_module(TRANSPORTS[profile.transport])


def transport(profile: DeviceProfile):
    """A callable `(job, timeout_s) -> result dict` that runs agent jobs on the profile's device."""
    import functools

    return functools.partial(transport_module(profile).run_agent, profile=profile)


def reachable(profile: DeviceProfile) -> str | None:
    """None when the device answers (a quick test, no imports), else why it does not."""
    fn = getattr(transport_module(profile), "reachable", None)
    return fn(profile) if fn else None


def check(profile: DeviceProfile) -> dict:
    """{'reachable': bool, 'reason'?, 'runtimes': {name: {'importable', 'detail'}}, ...} for the device."""
    return transport_module(profile).check(profile)


__all__ = ["DeviceProfile", "TRANSPORTS", "check", "list_profiles", "load_profile", "reachable", "transport",
           "transport_module"]
