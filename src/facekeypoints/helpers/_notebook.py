"""Is this a notebook kernel, and how to put a figure or a text into its output, once.

Cheap to import and to ask: ``IPython`` is never imported here unless it is already loaded
(a Jupyter, VS Code or Colab kernel has loaded it), so scripts and the command line never
pay for it or see a notebook code path. matplotlib is imported only to render a figure.

A figure shown here is marked (``_ipython_display_`` on the figure and on the axes a
plotting function returned), so that when the same object is also the cell's result it is
not drawn a second time, nor printed as ``<Axes: ...>``. Shown again in a later cell, or
after it was changed, it is drawn afresh.
"""
from __future__ import annotations

import io
import sys
import weakref
from typing import Any

#: PNG resolution of notebook pictures when a figure does not ask for another (dots per inch).
NOTEBOOK_DPI = 100.0


def get_shell() -> Any | None:
    """The running IPython shell, or None; never imports IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:   # a half-imported or stubbed IPython
        return None


def in_notebook() -> bool:
    """Whether code runs in a notebook kernel (Jupyter, VS Code, Colab), not a terminal.

    A kernel is an IPython shell with a ``kernel``; the plain IPython terminal has none
    (it cannot update a picture in place). ``FACEKEYPOINTS_NOTEBOOK=0`` turns the notebook
    behaviour off, ``=1`` forces it (IPython must be running).
    """
    import os

    forced = os.environ.get("FACEKEYPOINTS_NOTEBOOK", "").strip()
    if forced == "0":
        return False
    shell = get_shell()
    if shell is None:
        return False
    return forced == "1" or getattr(shell, "kernel", None) is not None


def widgets_available() -> bool:
    """Whether ipywidgets is installed (tqdm's notebook bar needs it); imports nothing."""
    if "ipywidgets" in sys.modules:
        return True
    from importlib.util import find_spec

    try:
        return find_spec("ipywidgets") is not None
    except (ImportError, ValueError):
        return False


def figure_png(fig: Any, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes, cropped to what is drawn (legends below the axes included)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or NOTEBOOK_DPI, bbox_inches="tight",
                facecolor="white")
    # The tight crop sets and restores the layout, which marks the figure stale; it is not:
    # this picture is what it shows, and a later change marks it stale again.
    fig.stale = False
    return buffer.getvalue()


def figure_bundle(fig: Any, dpi: float | None = None) -> dict[str, Any]:
    """A display bundle of the figure: its PNG and a text fallback."""
    width, height = fig.get_size_inches()
    return {"image/png": figure_png(fig, dpi),
            "text/plain": f"<Figure size {width * 100:g}x{height * 100:g} "
                          f"with {len(fig.axes)} Axes>"}


# Cells run so far in this kernel (counted by a pre_run_cell hook installed on first use), so
# that "already shown in this cell" does not depend on the execution count (which stays put
# when a front end runs cells without storing history).
_cell = {"n": 0, "hooked": weakref.WeakSet()}


def _next_cell(*args: Any, **kwargs: Any) -> None:
    _cell["n"] += 1


def _current_cell(shell: Any) -> int:
    if shell not in _cell["hooked"]:
        try:
            shell.events.register("pre_run_cell", _next_cell)
            _cell["hooked"].add(shell)
        except Exception:   # an IPython without events: fall back to the execution count
            return int(getattr(shell, "execution_count", 0) or 0)
    return _cell["n"]


class ShownFigure:
    """A figure's ``_ipython_display_`` after it was shown: nothing again in the same cell
    (unless it changed since), a fresh picture anywhere else. Picklable."""

    def __init__(self, fig: Any, cell: int, dpi: float | None = None) -> None:
        self.fig = weakref.ref(fig)
        self.cell = cell
        self.dpi = dpi

    def __call__(self) -> None:
        fig = self.fig()
        shell = get_shell()
        if fig is None or shell is None:
            return
        cell = _current_cell(shell)
        if cell == self.cell and not fig.stale:
            return          # this cell already shows it
        publish(figure_bundle(fig, self.dpi))
        self.cell = cell

    def __reduce__(self):   # a pickled figure forgets that it was shown
        return (_forgotten, ())


def _forgotten() -> None:
    return None


def publish(bundle: dict[str, Any], display_id: str | bool | None = None,
            update: bool = False) -> Any:
    """Display a raw mime bundle; with ``display_id`` return the handle to update it."""
    from IPython.display import display

    if update:
        return display(bundle, raw=True, display_id=display_id, update=True)
    return display(bundle, raw=True, display_id=display_id)


def show_figure(fig: Any, also: Any = None, dpi: float | None = None) -> bool:
    """Show ``fig`` in the cell's output once, if this is a notebook; say whether it was.

    ``fig`` and ``also`` (the object a plotting function returns, e.g. its axes) are
    marked, so that the cell's result does not draw it, or print it, a second time.
    """
    if not in_notebook():
        return False
    shell = get_shell()
    publish(figure_bundle(fig, dpi))
    marker = ShownFigure(fig, _current_cell(shell), dpi)
    for obj in (fig, also):
        if obj is not None:
            try:
                obj._ipython_display_ = marker
            except AttributeError:
                pass
    return True


class LiveDisplay:
    """One output area of a notebook cell, updated in place (one ``display_id``).

    Call :meth:`show` with a mime bundle: the first call displays it, later calls replace
    it. Outside a notebook every call does nothing.
    """

    def __init__(self) -> None:
        self.handle: Any = None
        self.updates = 0

    def show(self, bundle: dict[str, Any]) -> None:
        if self.handle is None:
            self.handle = publish(bundle, display_id=True)
        else:
            self.handle.update(bundle, raw=True)
            self.updates += 1

    @property
    def display_id(self) -> str | None:
        return None if self.handle is None else self.handle.display_id
