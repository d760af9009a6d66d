"""The ``facekeypoints`` command: train presets, evaluate, predict, plot, compare, sweep.

Each subcommand parses its arguments, calls the library and prints. Problems the user can fix
(a missing file, a bad value, an unknown name) end with one line on stderr and exit status 2;
Ctrl-C ends with status 130 after the run so far is written.

Subcommands live in modules by what they do: :mod:`.training` (train, recipe,
train-specialists, make-data), :mod:`.inspection` (evaluate, predict, plot, compare),
:mod:`.errors` and :mod:`.sweep`; :mod:`._common` holds what they share.
"""
from __future__ import annotations

import sys

from ._common import PRESETS, CLIError, Parser, one_line
from .errors import add_errors
from .inspection import add_compare, add_evaluate, add_plot, add_predict
from .photos import add_export, add_predict_photos
from .lr_find import add_lr_find
from .sweep import register_cli as add_sweep
from .training import (RECIPE_QUICK_EPOCHS, add_make_data, add_recipe, add_train,
                       add_train_specialists)

__all__ = ["main", "build_parser", "CLIError", "PRESETS", "RECIPE_QUICK_EPOCHS"]

#: Exceptions that mean "the input is wrong" (exit 2), not "the program is wrong" (exit 1).
_USER_ERRORS = (CLIError, ValueError, OSError, FloatingPointError)


def build_parser() -> Parser:
    """The ``facekeypoints`` argument parser with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Parsing sets ``args.func``, the subcommand to run with ``args``.
    """
    from .._version import __version__

    parser = Parser(
        prog="facekeypoints",
        description="Train, evaluate and compare facial keypoint CNNs (the classic nolearn "
                    "recipe on PyTorch). Every command has --help.",
        epilog="Without --data, commands use the embedded synthetic faces (generated into "
               "the cache on first use).")
    parser.add_argument("--version", action="version", version=f"facekeypoints {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on errors, show the full traceback (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_train, add_evaluate, add_predict, add_plot, add_compare, add_recipe,
                add_train_specialists, add_sweep, add_make_data, add_lr_find, add_errors,
                add_predict_photos, add_export):
        add(sub)
    return parser


def main(argv=None) -> int:
    """Run the ``facekeypoints`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 for input errors, 130 after Ctrl-C, 1 for bugs.

    Examples
    --------
    >>> main(["make-data", "/tmp/faces", "--train", "12", "--test", "3"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"facekeypoints {args.command}"
    try:
        return args.func(args)
    except BrokenPipeError:        # output piped into head & co.: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        if args.traceback:
            raise
        if isinstance(exc, _USER_ERRORS):   # data errors carry their hint in CLI words too
            print(f"{prefix}: error: {one_line(getattr(exc, 'cli_message', None) or exc)}",
                  file=sys.stderr)
            return 2
        print(f"{prefix}: error: {type(exc).__name__}: {one_line(exc)} (rerun as "
              f"'facekeypoints --traceback {args.command} ...' for details)", file=sys.stderr)
        return 1
