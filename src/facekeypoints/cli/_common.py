"""What every subcommand shares: one-line errors, argument types, loading data and models,
and the net configuration that ``--set``, ``--device`` and ``--seed`` apply."""
from __future__ import annotations

import argparse
from pathlib import Path

from .._literals import parse_value
from .._suggest import close_matches

PRESETS = ("net1", "net2", "net3", "net4", "net5", "net6", "net7", "modern")
PRESET_HELP = ("net1 .. net7: the recipe's nets (net4: + lr/momentum schedule, net5: + flips, "
               "net6: + dropout, net7: bigger); modern: BatchNorm conv blocks, AdamW, "
               "warm-up + cosine, flips, flip TTA")
MODEL_HELP = "a run directory, a model.pt file, or a specialist ensemble directory"
DATA_HELP = ("a Kaggle training.csv, also as Kaggle's training.zip or gzipped (default: the "
             "embedded synthetic faces)")
PRECISION_HELP = ("32 (float32), bf16 (bfloat16 mixed precision) or auto (bf16 where the "
                  "device runs it natively: a CUDA GPU with bf16, a CPU with AMX or "
                  "AVX512-BF16)")
DEVICE_HELP = "cpu, cuda, cuda:1 ... (default: CUDA when present)"
#: The nets' ``random_state`` when neither ``--seed`` nor ``--set random_state=N`` is given.
DEFAULT_SEED = 0


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

PARTIAL_LABELS_HELP = ("use every face with at least one keypoint, NaN marking the missing "
                       "ones (about 7,000 faces of Kaggle's 7,049 instead of about 2,140)")


def load_training_data(path, cols=None, dropna=True):
    """``load2d(path, cols=cols, dropna=dropna)``; a missing file is a CLIError."""
    from ..data import load2d

    try:
        return load2d(path, cols=cols, dropna=dropna)
    except FileNotFoundError:
        raise CLIError(f"no such data file: {path}") from None


def label_summary(y):
    """One line on the labels of partial-label data: faces, labelled values, complete faces."""
    import numpy as np

    labelled = ~np.isnan(y)
    return (f"{len(y)} faces, {int(labelled.sum())} labelled keypoint values of {y.size} "
            f"({int(labelled.all(axis=1).sum())} faces have all {y.shape[1] // 2} keypoints)")


def data_name(path):
    """How a ``--data`` value is shown and recorded."""
    return str(path) if path else "embedded synthetic faces"


def check_device(device, label=None):
    """Refuse a device this machine does not have, or that nets cannot run on, before
    anything is loaded. ``label`` is how the error names it (default ``--device DEVICE``)."""
    if device is None or device == "auto":
        return
    label = label or f"--device {device}"
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(f"{label}: {device!r} is not a device (use cpu, cuda, cuda:1, mps or "
                       "auto)") from None
    if dev.type == "cpu":
        return
    if dev.type == "meta":
        raise CLIError(f"{label}: the meta device holds shapes but no data, so nets cannot "
                       "train or predict on it; use cpu, cuda or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"{label}: CUDA is not available here; use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"{label}: this machine has {torch.cuda.device_count()} CUDA "
                           "device(s)")
        return
    if dev.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise CLIError(f"{label}: Apple's MPS is not available here (it needs a Mac with "
                           "Apple silicon and a PyTorch built for it); use cpu")
        return
    try:                            # xpu, xla, ...: available when a tensor can live there
        torch.empty(1, device=dev)
    except Exception:  # noqa: BLE001 - torch raises several kinds for a missing backend
        raise CLIError(f"{label}: this machine (or this PyTorch build) has no {dev.type} "
                       "device; use cpu or auto") from None


def output_path(path, option="-o", directory=False):
    """``path`` (a file, or with ``directory`` a folder), with the folder it goes in created.

    A path through an existing file (``-o afile/x.png``), a file name that is a directory,
    or a folder that cannot be created is a CLIError naming ``option``.
    """
    path = Path(path)
    folder = path if directory else path.parent
    if directory and path.exists() and not path.is_dir():
        raise CLIError(f"{option} {path}: that is a file, not a directory")
    if not directory and path.is_dir():
        raise CLIError(f"{option} {path}: that is a directory; give a file name")
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise CLIError(f"{option} {path}: {ancestor} is a file, not a directory")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"{option} {path}: cannot create the directory {folder} "
                       f"({exc.strerror or one_line(exc)})") from None
    return path


def check_file(path, what):
    """Refuse an input path that is missing, a directory, or not a regular file."""
    path = Path(path)
    if not path.exists():
        raise CLIError(f"no such {what}: {path}")
    if path.is_dir():
        raise CLIError(f"{what} {path} is a directory, not a CSV file")
    if not path.is_file():
        raise CLIError(f"{what} {path} is not a regular file (a device or pipe?)")


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


def seed_setting(args, sets):
    """The ``random_state`` that ``--seed`` and ``--set random_state=N`` ask for.

    ``--set random_state=N`` wins over ``--seed``'s default; an explicit ``--seed`` that
    disagrees with it is an error. Without either, :data:`DEFAULT_SEED`. (While a
    command's ``--seed`` defaults to 0 rather than None, ``--seed 0`` counts as not given.)
    """
    seed = getattr(args, "seed", None)
    if "random_state" in sets:
        wanted = sets["random_state"]
        if seed not in (None, DEFAULT_SEED) and seed != wanted:
            raise CLIError(f"--seed {seed} and --set random_state={wanted!r} disagree; give "
                           "one of them")
        return wanted
    return DEFAULT_SEED if seed is None else seed


def device_setting(args, sets):
    """The device that ``--device`` and ``--set device=X`` ask for, checked (None: neither)."""
    given = getattr(args, "device", None)
    if "device" in sets:
        check_device(sets["device"], label=f"--set device={sets['device']}")
        if given and given != sets["device"]:
            raise CLIError(f"--device {given} and --set device={sets['device']} disagree; give "
                           "one of them")
        return sets["device"]
    if given:
        check_device(given)
    return given or None


def check_settings(net, sets):
    """Build a CPU copy of ``net`` with the ``--set`` values ``sets``, so that a value it
    refuses fails now, before any data is loaded, as one line that names the setting."""
    if not sets:
        return
    from sklearn.base import clone

    def refusal(params):
        trial = clone(net)
        try:
            trial.set_params(**params)
            trial.set_params(device="cpu", verbose=0)
            trial.initialize()
            trial.hyperparameter_values()   # also those the update rule does not take
        except Exception as exc:  # noqa: BLE001 - whatever initialize refuses, said in one line
            return one_line(exc)
        return None

    problem = refusal(sets)
    if problem is None:
        return
    for key, value in sets.items():    # name the setting when one alone is refused
        if refusal({key: value}) == problem:
            raise CLIError(f"--set {key}={value!r}: {problem}")
    raise CLIError(f"--set: {problem}")


def configure(net, args, sets=None, name="the net"):
    """Apply --set, --device, --seed and the live progress display to a preset net.

    ``--set device=X`` is checked as ``--device X`` is, ``--set random_state=N`` wins over
    ``--seed``'s default (see :func:`seed_setting`), and the net is built once on the CPU
    to check the ``--set`` values (see :func:`check_settings`).
    """
    from tqdm.auto import tqdm

    from ..callbacks import EpochTable
    from ..progress import EpochProgress

    params = dict(sets or {})
    check_sets(net, name, params)
    device = device_setting(args, params)
    if device is not None:
        params["device"] = device
    if getattr(args, "precision", None):
        params["precision"] = args.precision
    if hasattr(args, "seed") or "random_state" in params:
        params["random_state"] = seed_setting(args, params)
    check_settings(net, sets)
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


def load_model(path, device=None, precision=None):
    """A saved net from a run directory or model file; missing paths are CLIErrors."""
    from ..persist import load_model as load

    check_device(device)
    path = Path(path)
    if not path.exists():
        raise CLIError(f"no run directory or model file at {path}")
    settle_run(path)
    if path.is_dir() and not (path / "model.pt").exists():
        raise CLIError(f"{path} is a directory without model.pt (not a run directory)")
    # A file that is not ours raises ModelFileError (a ValueError): one line, exit 2.
    return load(path, device=device or "auto", precision=precision)


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


def settle_run(path):
    """Before reading a run directory, finish a commit a killed writer left half done, so
    that a reader sees the previous run or the new one, never a mix (``runs.settle``)."""
    from ..runs import pending_commit, settle

    folder = Path(path)
    folder = folder if folder.is_dir() else folder.parent
    if pending_commit(folder) and not settle(folder):
        raise CLIError(f"{folder}: another process is still writing this run; try again")


def histories(paths):
    """``{label: records}`` of run directories or model files; unreadable ones are CLIErrors."""
    from ..persist import ModelFileError
    from ..reports import read_history, run_labels

    for p in paths:
        if not Path(p).exists():
            raise CLIError(f"no run directory or model file at {p}")
        settle_run(p)
    found = {}
    for label, p in zip(run_labels(paths), paths):
        try:
            records = read_history(p)
        except (FileNotFoundError, ModelFileError) as exc:
            raise CLIError(f"{p}: not a run directory or model file ({one_line(exc)})") from None
        except ValueError as exc:     # a malformed history.json; the message names it
            raise CLIError(one_line(exc)) from None
        if not records:
            raise CLIError(f"{p}: the run has no finished epochs")
        found[label] = records
    return found
