"""Layer 1, helpers: keypoint geometry, metrics, suggestions, the cache directory, atomic writes.

The modules in this folder import nothing above it. They are imported by their public names,
``facekeypoints.<module>`` (``facekeypoints.metrics``); ``facekeypoints.helpers.<module>``
names the same module object. ``tests/test_architecture.py`` reads a module's layer from the
folder it lives in.
"""

__all__: list[str] = []  # its modules are reached by their public names, facekeypoints.<module>
