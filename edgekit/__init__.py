"""edgekit: train or load a model, compress it, export it to ONNX/TFLite, verify and benchmark it on target devices.

Importing edgekit is cheap; heavy libraries load inside the functions that use them.
"""

__version__ = "0.1.0"
