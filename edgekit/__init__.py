"""edgekit: train or load a model, compress it, export it to ONNX/TFLite, verify and benchmark it on target devices.

Importing edgekit is cheap; heavy libraries load inside the functions that use them.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`edgekit.apply_pass` and the other public API functions, imported on first use (edgekit.api)."""
    if name.startswith("_"):
        raise AttributeError(name)
    import importlib

    api = importlib.import_module("edgekit.api")
    try:
        return getattr(api, name)
    except AttributeError:
        raise AttributeError(f"module 'edgekit' has no attribute '{name}'") from None
