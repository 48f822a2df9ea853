"""Devices: where a runtime runs. Transports are chosen by the profile's `transport`."""

from __future__ import annotations

from edgekit.devices.profile import DeviceProfile, list_profiles, load_profile

TRANSPORTS = {"local": "edgekit.devices.local:run_agent"}


def transport(profile: DeviceProfile):
    import importlib

    module, _, fn = TRANSPORTS[profile.transport].partition(":")
    return getattr(importlib.import_module(module), fn)


__all__ = ["DeviceProfile", "TRANSPORTS", "list_profiles", "load_profile", "transport"]
