"""Layer 3, training core: the net, its parts (layers, updates, losses, iterators, callbacks),
presets, safe model files and exact resume.

Its modules import only data and helpers. They are imported by their public names,
``facekeypoints.<module>`` (``facekeypoints.net``, ``facekeypoints.layers``);
``facekeypoints.core.<module>`` names the same module object.
"""

__all__: list[str] = []  # its modules are reached by their public names, facekeypoints.<module>
