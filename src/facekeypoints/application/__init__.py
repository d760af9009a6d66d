"""Layer 4, application: training runs, reports and plots, sweeps, specialists, notebooks.

Its modules import the layers below, never the command line. They are imported by their
public names, ``facekeypoints.<module>`` (``facekeypoints.runs``);
``facekeypoints.application.<module>`` names the same module object.
"""

__all__: list[str] = []  # its modules are reached by their public names, facekeypoints.<module>
