"""Values typed on a command line: Python literals, or bare strings (stdlib only).

One parser for every ``KEY=VALUE`` the user types (``--set``, ``--grid``), so that
``0.03``, ``1e-3``, ``(3, 3)``, ``None`` and ``'adam'`` mean the same everywhere.
"""
from __future__ import annotations

import ast

__all__ = ["parse_value", "split_top_level"]


def parse_value(text: str) -> object:
    """A Python literal, or the text itself when it is not one.

    Parameters
    ----------
    text : str
        What the user typed after ``=``.

    Returns
    -------
    object
        ``ast.literal_eval(text)`` (a number, tuple, list, dict, ``None``, bool or quoted
        string), else ``text`` unchanged (a bare word such as ``adam``).

    Examples
    --------
    >>> parse_value("1e-3"), parse_value("(3, 3)"), parse_value("adam")
    (0.001, (3, 3), 'adam')
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def split_top_level(text: str) -> list[str]:
    """Split ``text`` at the commas that are not inside brackets or quotes.

    Parameters
    ----------
    text : str
        Comma-separated values, e.g. ``"(3,3),(5,5)"``.

    Returns
    -------
    list of str
        The pieces, unstripped; ``[text]`` when there is no top-level comma.

    Examples
    --------
    >>> split_top_level("(3,3),(5, 5),'a,b'")
    ['(3,3)', '(5, 5)', "'a,b'"]
    """
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
