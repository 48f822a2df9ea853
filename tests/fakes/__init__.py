"""Fakes of each extension point, one small module each, registered by tests/test_registries.py with one registry
line. They exist to show a new extension is one module plus one line; no other test may use them in place of a
real runtime."""
