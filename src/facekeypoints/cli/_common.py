"""What every subcommand shares: one-line errors, argument types, loading data and models,
and the net configuration that ``--set``, ``--device`` and ``--seed`` apply."""
from __future__ import annotations

import argparse
from pathlib import Path

from .._literals import parse_value
from .._suggest import close_matches

PRESETS = ("net1", "net2", "net3", "net4", "net5", "net6", "net7")
MODEL_HELP = "a run directory, a model.pt file, or a specialist ensemble directory"
DATA_HELP = "a Kaggle training.csv (default: the embedded synthetic faces)"
DEVICE_HELP = "cpu, cuda, cuda:1 ... (default: CUDA when present)"


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``facekeypoints train: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_command(sub, name, func, help, epilog=None):
    """A subcommand parser that runs ``func(args)``; its description is ``func``'s docstring
    up to the numpydoc sections (those are for the API documentation)."""
    import inspect

    description = inspect.cleandoc(func.__doc__).split("\n\nParameters\n----------\n")[0]
    p = sub.add_parser(name, help=help, description=description, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


# -- argument types --------------------------------------------------------------------------

def key_value(text):
    """``KEY=VALUE`` with VALUE a Python literal (else a string): ``(key, value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value.strip())


def positive_int(text):
    """An integer >= 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def one_line(exc):
    """An exception's message on one line (its type name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# -- shared steps ----------------------------------------------------------------------------

def load_training_data(path, cols=None):
    """``load2d(path, cols=cols)``; a missing file is a CLIError."""
    from ..data import load2d

    try:
        return load2d(path, cols=cols)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {path}") from None


def data_name(path):
    """How a ``--data`` value is shown and recorded."""
    return str(path) if path else "embedded synthetic faces"


def check_device(device):
    """Refuse a ``--device`` this machine does not have, before anything is loaded."""
    if not device or device == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CLIError(f"--device: {device!r} is not a device (use cpu, cuda, cuda:1, auto)"
                       ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {device}: CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {device}: this machine has "
                           f"{torch.cuda.device_count()} CUDA device(s)")


def check_sets(net, name, sets):
    """Name unknown ``--set`` keys before any data is loaded (with a suggestion)."""
    valid = sorted(k for k in net.get_params(deep=False) if not k.startswith("_"))
    callbacks = dict(item for item in (net.callbacks or []) if isinstance(item, (tuple, list)))
    for key in sets:
        head, _, rest = key.partition("__")
        if head == "callbacks" and rest:
            cb_name, _, param = rest.partition("__")
            if cb_name not in callbacks:
                known = ", ".join(callbacks) or "none"
                raise CLIError(f"--set {key}: {name} has no callback {cb_name!r} "
                               f"(its named callbacks: {known})")
            params = sorted(callbacks[cb_name].get_params())
            if param and param.partition("__")[0] not in params:
                raise CLIError(f"--set {key}: callback {cb_name!r} has no parameter {param!r} "
                               f"(it has {', '.join(params)})")
        elif head not in valid:
            close = close_matches(head, valid)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CLIError(f"--set {key}: {name} has no parameter {head!r}{hint} "
                           f"(see 'facekeypoints train --help')")


def configure(net, args, sets=None, name="the net"):
    """Apply --set, --device, --seed and the live progress display to a preset net."""
    from tqdm.auto import tqdm

    from ..callbacks import EpochTable
    from ..progress import EpochProgress

    params = dict(sets or {})
    check_sets(net, name, params)
    if getattr(args, "device", None):
        check_device(args.device)
        params["device"] = args.device
    if getattr(args, "seed", None) is not None:
        params["random_state"] = args.seed
    try:
        net.set_params(**params)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--set: {one_line(exc)}") from None
    net.set_params(verbose=1, callbacks__print_log=EpochTable(sink=tqdm.write))
    net.callbacks = list(net.callbacks or []) + [("progress", EpochProgress())]
    return net


def make_net(name, max_epochs, args, sets):
    """A preset, configured for the command line (see :func:`configure`)."""
    from .. import presets

    try:
        net = presets.get(name, **({} if max_epochs is None else {"max_epochs": max_epochs}))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return configure(net, args, sets, name=name)


def load_model(path, device=None):
    """A saved net from a run directory or model file; missing paths are CLIErrors."""
    from ..persist import load_model as load

    check_device(device)
    path = Path(path)
    if not path.exists():
        raise CLIError(f"no run directory or model file at {path}")
    if path.is_dir() and not (path / "model.pt").exists():
        raise CLIError(f"{path} is a directory without model.pt (not a run directory)")
    # A file that is not ours raises ModelFileError (a ValueError): one line, exit 2.
    return load(path, device=device or "auto")


def model_columns(net):
    """The keypoint columns a loaded net predicts."""
    from ..data import KEYPOINT_COLUMNS

    columns = list(getattr(net, "columns_", None) or KEYPOINT_COLUMNS)
    shapes = getattr(net.module_, "shapes", None)
    n_out = list(shapes.values())[-1][-1] if shapes else None
    if n_out is not None and n_out != len(columns):
        raise CLIError(f"the model has {n_out} outputs but no keypoint column names for them "
                       "(only nets with 30 outputs or a saved columns_ list can be evaluated)")
    return columns


def is_ensemble(path):
    """Whether ``path`` is a specialist ensemble directory."""
    from ..specialists import is_ensemble_dir

    return is_ensemble_dir(path)


def load_ensemble(path, device=None):
    """A saved specialist ensemble (bad files: ModelFileError, exit 2)."""
    from ..specialists import load_ensemble as load

    check_device(device)
    return load(path, device=device or "auto")


def histories(paths):
    """``{label: records}`` of run directories or model files; unreadable ones are CLIErrors."""
    from ..persist import ModelFileError
    from ..reports import read_history, run_labels

    for p in paths:
        if not Path(p).exists():
            raise CLIError(f"no run directory or model file at {p}")
    found = {}
    for label, p in zip(run_labels(paths), paths):
        try:
            records = read_history(p)
        except (FileNotFoundError, ModelFileError) as exc:
            raise CLIError(f"{p}: not a run directory or model file ({one_line(exc)})") from None
        if not records:
            raise CLIError(f"{p}: the run has no finished epochs")
        found[label] = records
    return found
