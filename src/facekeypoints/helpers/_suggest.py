"""'Did you mean ...?' hints for names a user mistyped (one helper for every message)."""
from __future__ import annotations

import difflib


def close_matches(word, choices, n=1, cutoff=0.6):
    """The up to ``n`` entries of ``choices`` closest to ``word`` (difflib's ratio)."""
    return difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=cutoff)


def did_you_mean(word, choices, n=1, cutoff=0.6, style="sentence"):
    """A hint naming the closest of ``choices`` to ``word``, or ``''`` when none is close.

    ``style='sentence'`` gives `` Did you mean 'x'?``; ``style='paren'`` gives
    `` (did you mean 'x'?)``; several matches are joined with "or".
    """
    close = close_matches(word, choices, n=n, cutoff=cutoff)
    if not close:
        return ""
    names = " or ".join(repr(c) for c in close)
    return f" (did you mean {names}?)" if style == "paren" else f" Did you mean {names}?"
