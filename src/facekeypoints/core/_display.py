"""How a net shows itself: nolearn's layer summary, IPython's pretty text and the HTML view.

The notebook displays replace scikit-learn's estimator diagram with what a keypoint net's
user looks for: status, layers with output sizes and parameter counts, the settings, and the
best validation loss with its RMSE in pixels (measured, see :mod:`facekeypoints._pixels`).
"""
from __future__ import annotations

import html

import torch
from tabulate import tabulate

from .pixels import best_valid_px
from .layers import LayerStack, build_stack, split_layer_params
from .shared import is_shared, read_value

__all__: list[str] = []


def meta_stack(net):
    """The net's layers built on torch's meta device (shapes and counts, no weights)."""
    with torch.device("meta"):
        grouped, _ = split_layer_params(net.layers, net.layer_params())
        return build_stack(net.layers, grouped)


def layer_summary(net):
    """nolearn's opening lines: parameter count, then each layer's output size."""
    lines = [f"# Neural Network with {net.n_parameters()} learnable parameters", ""]
    if isinstance(net.module_, LayerStack):
        rows = [(i, name, "x".join(str(s) for s in shape))
                for i, (name, shape) in enumerate(net.module_.shapes.items())]
        lines += ["## Layer information", "",
                  tabulate(rows, headers=["#", "name", "size"]), ""]
    return "\n".join(lines)


def _layer_rows(net, module):
    rows = []
    if isinstance(module, LayerStack):
        kinds = dict(net.layers or ())
        for i, (name, shape) in enumerate(module.shapes.items()):
            sub = module.layers[name] if name in module.layers else None
            spec = kinds.get(name)
            kind = getattr(spec, "__name__", None) or type(spec).__name__ \
                if not isinstance(spec, str) else spec
            rows.append((i, name, kind, "x".join(map(str, shape)),
                         sum(p.numel() for p in sub.parameters()) if sub else 0))
    else:
        for i, (name, sub) in enumerate(module.named_children()):
            rows.append((i, name, type(sub).__name__, "",
                         sum(p.numel() for p in sub.parameters())))
    return rows


def _settings(net, history, epochs):
    facts = [("update", getattr(net.update, "__name__", type(net.update).__name__))]
    for key, label in (("update_learning_rate", "learning rate"),
                       ("update_momentum", "momentum")):
        value = getattr(net, key, None)
        if value is not None:
            try:
                facts.append((label, f"{read_value(value):.6g}"
                              + (" (shared)" if is_shared(value) else "")))
            except Exception:
                facts.append((label, repr(value)))
    facts += [("max_epochs", str(net.max_epochs)), ("eval_size", str(net.eval_size)),
              ("device", str(getattr(net, "device_", None) or net.device))]
    callbacks = [item[0] if isinstance(item, (tuple, list)) else type(item).__name__
                 for item in (net.callbacks or [])]
    if callbacks:
        facts.append(("callbacks", ", ".join(map(str, callbacks))))
    if epochs:
        losses = [(row.get("valid_loss"), row.get("epoch")) for row in history]
        losses = [(v, e) for v, e in losses if v is not None]
        if losses:
            best, at = min(losses)
            text = f"{best:.6f} at epoch {at}"
            px = best_valid_px(history, net.criterion) if net.regression else None
            if px is not None:
                text += f" (RMSE {px[0]:.2f} px" + (f" at epoch {px[1]})" if px[1] != at
                                                    else ")")
            facts.append(("best valid loss", text))
    return facts


def facts(net):
    """What the displays show: ``(status, layer rows, parameter count, settings)``."""
    initialized = getattr(net, "initialized_", False)
    history = getattr(net, "history_", None) if initialized else None
    epochs = len(history) if history is not None else 0
    status = (f"fitted, {epochs} epoch{'s' * (epochs != 1)}" if epochs else
              "initialized, no training history" if initialized else "not fitted")
    module = getattr(net, "module_", None) if initialized else None
    if module is None and net.layers is not None:
        try:    # the shapes and counts without allocating: build on torch's meta device
            module = meta_stack(net)
        except Exception:
            module = None
    rows, n_params = [], None
    if module is not None:
        n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows = _layer_rows(net, module)
    return status, rows, n_params, _settings(net, history, epochs)


def pretty(net, printer, cycle):
    """IPython's pretty text: status line, layer table, settings."""
    if cycle:
        printer.text(f"{type(net).__name__}(...)")
        return
    status, rows, n_params, settings = facts(net)
    count = "?" if n_params is None else f"{n_params:,}"
    lines = [f"{type(net).__name__} ({status}): {count} learnable parameters"]
    if rows:
        lines += ["", tabulate([r[1:] for r in rows],
                               headers=["layer", "type", "output", "parameters"],
                               intfmt=",", disable_numparse=False), ""]
    lines += [f"{k}: {v}" for k, v in settings]
    printer.text("\n".join(lines))


def to_html(net):
    """The notebook's HTML view: a box with the status, the layer table and the settings."""
    status, rows, n_params, settings = facts(net)
    esc = html.escape
    colour = "#2e7d32" if status.startswith("fitted") else "#8a6d00"
    count = "not known until initialized" if n_params is None else f"{n_params:,}"
    cell = "padding:1px 10px;text-align:{};"
    head = "".join(f"<th style='{cell.format(a)}'>{h}</th>" for h, a in
                   (("#", "right"), ("layer", "left"), ("type", "left"),
                    ("output", "right"), ("parameters", "right")))
    body = "".join(
        "<tr>" + "".join(f"<td style='{cell.format(a)}'>{esc(str(v))}</td>" for v, a in
                         zip((i, name, kind, size, f"{n:,}" if n else ""),
                             ("right", "left", "left", "right", "right"))) + "</tr>"
        for i, name, kind, size, n in rows)
    table = (f"<table style='border-collapse:collapse;font-size:90%;margin:4px 0'>"
             f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>") if rows else ""
    shown = "".join(f"<tr><td style='{cell.format('left')}color:#666'>{esc(k)}</td>"
                    f"<td style='{cell.format('left')}'>{esc(v)}</td></tr>"
                    for k, v in settings)
    return (f"<div style='border:1px solid #bbb;border-radius:4px;padding:6px 10px;"
            f"display:inline-block;font-family:monospace'>"
            f"<div><b>{esc(type(net).__name__)}</b> "
            f"<span style='color:white;background:{colour};border-radius:3px;"
            f"padding:0 5px;font-size:85%'>{esc(status)}</span> "
            f"&middot; {esc(count)} learnable parameters</div>{table}"
            f"<details><summary>settings</summary><table style='font-size:90%'>"
            f"{shown}</table></details></div>")


def mimebundle(net):
    """``{'text/html': ..., 'text/plain': ...}`` for Jupyter."""
    from io import StringIO

    try:
        from IPython.lib.pretty import PrettyPrinter
    except ImportError:
        return {"text/html": to_html(net), "text/plain": repr(net)}
    stream = StringIO()
    printer = PrettyPrinter(stream)
    pretty(net, printer, False)
    printer.flush()
    return {"text/html": to_html(net), "text/plain": stream.getvalue()}


class Display:
    """The net's displays (a mixin of :class:`NeuralNet`): nolearn's summary, the parameter
    count, and IPython's rich reprs in place of scikit-learn's estimator diagram."""

    def n_parameters(self) -> int:
        """Return the number of learnable parameters (a ``layers=`` net need not be initialized).

        Returns
        -------
        int
            Elements of all parameters with ``requires_grad``; an uninitialized ``layers=``
            net is counted on torch's meta device, without allocating weights.

        Examples
        --------
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.layers import DenseLayer, InputLayer
        >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
        ...                 input_shape=(None, 4), output_num_units=2, device='cpu')
        >>> net.n_parameters(), net.initialize().n_parameters()
        (10, 10)
        """
        module = getattr(self, "module_", None) if getattr(self, "initialized_", False) \
            else None
        if module is None:
            if self.layers is None:
                raise AttributeError("n_parameters of a module= net needs net.initialize() first")
            module = meta_stack(self)
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    def layer_summary(self) -> str:
        """Return nolearn's opening lines: parameter count, then each layer's output size.

        Returns
        -------
        str
            The summary the net prints first when ``verbose`` (layer table: ``layers=`` nets).

        Examples
        --------
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.layers import DenseLayer, InputLayer
        >>> net = NeuralNet(layers=[('input', InputLayer), ('output', DenseLayer)],
        ...                 input_shape=(None, 4), output_num_units=2, device='cpu')
        >>> print(net.initialize().layer_summary())
        # Neural Network with 10 learnable parameters
        <BLANKLINE>
        ## Layer information
        <BLANKLINE>
          #  name      size
        ---  ------  ------
          0  input        4
          1  output       2
        <BLANKLINE>
        """
        return layer_summary(self)

    def _repr_pretty_(self, printer, cycle):
        pretty(self, printer, cycle)

    def _repr_html_(self) -> str:
        return to_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(self)
