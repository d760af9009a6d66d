"""Layer 2, data: the Kaggle-format data API, its CSV parser and cache, the embedded faces.

Its modules import only helpers. They are imported by their public names,
``facekeypoints.<module>`` (``facekeypoints.data``, ``facekeypoints.synthetic``);
``facekeypoints.datasets.<module>`` names the same module object.
"""

__all__: list[str] = []  # its modules are reached by their public names, facekeypoints.<module>
