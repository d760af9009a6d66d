"""Every public name has a numpydoc docstring (checked with numpydoc's own validator).

Public names are what ``facekeypoints`` and each public module (no leading underscore) list in
``__all__``, and the public methods those classes define themselves. Checked: a docstring
exists (GL08), it opens with a one-line summary (SS01..SS03), every parameter is documented
and no unknown one is (PR01, PR02), and a function that returns something has a Returns
section (RT01). A method that overrides a documented method of a base class (skorch's hooks)
needs a summary line only.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

import facekeypoints  # noqa: E402

CHECKED = {"GL08", "SS01", "SS02", "SS03", "PR01", "PR02", "RT01"}
SUMMARY_ONLY = {"GL08", "SS01", "SS02", "SS03"}


def public_modules():
    names = ["facekeypoints"]
    for info in pkgutil.walk_packages(facekeypoints.__path__, "facekeypoints."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


def _overrides_documented(cls, name):
    for base in cls.__mro__[1:]:
        attr = base.__dict__.get(name)
        if attr is not None and inspect.getdoc(attr):
            return True
    return False


def public_names():
    seen = {}
    for modname in public_modules():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            owner = getattr(obj, "__module__", "") or ""
            if not owner.startswith("facekeypoints"):
                continue
            path = f"{owner}.{obj.__qualname__}"
            seen.setdefault(path, CHECKED)
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") or isinstance(value, property):
                        continue
                    func = value.__func__ if isinstance(value, (staticmethod, classmethod)) \
                        else value
                    if not inspect.isfunction(func):
                        continue
                    codes = SUMMARY_ONLY if _overrides_documented(obj, attr) else CHECKED
                    seen.setdefault(f"{path}.{attr}", codes)
    return sorted(seen.items())


def test_every_public_module_declares_all():
    missing = [m for m in public_modules()
               if not hasattr(importlib.import_module(m), "__all__")]
    assert not missing, f"public modules without __all__: {missing}"


@pytest.mark.parametrize("path,codes", public_names(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_public_name_has_a_numpydoc_docstring(path, codes):
    errors = [f"{code}: {msg}" for code, msg in numpydoc_validate.validate(path)["errors"]
              if code in codes]
    assert not errors, f"{path}:\n  " + "\n  ".join(errors)
