"""Start a net from another model's weights: every layer whose shape matches is loaded.

``init_from(net, source)`` initializes ``net``, copies in each weight tensor of ``source``
(a model file, a run directory, ``"pretrained"`` for the net shipped in the package, or a
fitted net) whose name and shape match, and sets ``warm_start`` so that the next ``fit``
trains from there instead of drawing new weights. It returns one row per weight tensor of
``net`` (loaded or not, and why), and records the source and its checksum in
``net.init_from_``, which ``facekeypoints train --init-from`` writes to ``run.json``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["init_from", "format_init_table", "PRETRAINED_MODEL"]

#: The model file of :func:`facekeypoints.pretrained`, inside the installed package.
PRETRAINED_MODEL = Path(__file__).resolve().parents[1] / "_pretrained" / "modern.pt"


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _source_weights(source):
    if hasattr(source, "module_"):
        state = {k: v.detach().cpu() for k, v in source.module_.state_dict().items()}
        return state, "a fitted net", None
    from .persist import read_model_file

    path = PRETRAINED_MODEL if str(source) == "pretrained" else Path(source)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"--init-from: no model file at {path} (give a model file, a "
                                "run directory holding model.pt, or 'pretrained')")
    payload = read_model_file(path)
    checksum = payload.get("checksum") or _file_sha256(path)
    return payload["state_dict"], str(path), checksum


def init_from(net: Any, source: Any) -> list[dict[str, Any]]:
    """Load every weight of ``source`` whose name and shape match into ``net``.

    Parameters
    ----------
    net : NeuralNet
        The net to start (initialized here if it is not).
    source : str, path-like or NeuralNet
        A model file, a run directory, ``"pretrained"``, or a fitted net.

    Returns
    -------
    list of dict
        One per weight tensor of ``net``: ``name``, ``shape``, ``loaded`` (bool) and
        ``why`` (``"loaded"``, ``"not in the source"`` or the source's other shape).

    Raises
    ------
    FileNotFoundError
        If the source file is missing.
    facekeypoints.persist.ModelFileError
        If it is damaged or not a model file.
    ValueError
        If no weight at all matches (the nets share nothing).

    Examples
    --------
    >>> import facekeypoints as fk
    >>> a = fk.presets.modern(device='cpu', random_state=0).initialize()
    >>> b = fk.presets.modern(device='cpu', random_state=1, output_num_units=8)
    >>> rows = init_from(b, a)
    >>> sum(r["loaded"] for r in rows), len(rows), b.warm_start
    (32, 34, True)
    """
    import torch

    state, label, checksum = _source_weights(source)
    if not getattr(net, "initialized_", False):
        net.initialize()
    own = net.module_.state_dict()
    rows, take = [], {}
    for name, tensor in own.items():
        other = state.get(name)
        row = {"name": name, "shape": tuple(tensor.shape)}
        if other is None:
            row.update(loaded=False, why="not in the source")
        elif tuple(other.shape) != tuple(tensor.shape):
            row.update(loaded=False, why=f"source has shape {tuple(other.shape)}")
        else:
            row.update(loaded=True, why="loaded")
            take[name] = other
        rows.append(row)
    if not take:
        raise ValueError(f"--init-from {label}: no weight matches this net by name and shape; "
                         "start from a model of the same preset (or one sharing its layers)")
    with torch.no_grad():
        for name, value in take.items():
            own[name].copy_(value.to(own[name].device, own[name].dtype))
    net.warm_start = True
    net.init_from_ = {"source": "pretrained" if str(source) == "pretrained" else label,
                      "checksum": checksum, "loaded": len(take), "of": len(rows)}
    return rows


def format_init_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`init_from` as a plain text table.

    Parameters
    ----------
    rows : list of dict
        What :func:`init_from` returned.

    Returns
    -------
    str
        One line per weight tensor, then a count.
    """
    width = max([len(r["name"]) for r in rows] + [6])
    lines = [f"{'weight':<{width}}  {'shape':<18}  status"]
    for r in rows:
        shape = "x".join(map(str, r["shape"])) or "scalar"
        lines.append(f"{r['name']:<{width}}  {shape:<18}  {r['why']}")
    lines.append(f"{sum(r['loaded'] for r in rows)} of {len(rows)} weight tensors loaded")
    return "\n".join(lines)

