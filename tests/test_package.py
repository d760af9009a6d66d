"""The package surface: old-recipe names, and imports that stay light until training needs them."""
import subprocess
import sys

import pytest

import facekeypoints as fk
from facekeypoints import cli, presets


def test_every_exported_name_resolves_and_shared_is_the_function():
    for name in fk.__all__:
        assert getattr(fk, name) is not None
    assert callable(fk.shared) and float(fk.shared(fk.float32(0.5)).get_value()) == 0.5
    assert "NeuralNet" in dir(fk)
    with pytest.raises(AttributeError, match="no attribute 'NerualNet'"):
        fk.NerualNet  # the attribute access is the test


def test_star_import_gives_the_old_recipe_names():
    namespace = {}
    exec("from facekeypoints import *", namespace)
    assert {"NeuralNet", "AdjustVariable", "FlipBatchIterator", "shared", "float32",
            "layers", "updates"} <= set(namespace)


def test_cli_preset_names_are_the_presets():
    assert cli.PRESETS == presets.NETS


def test_import_and_cli_help_do_not_load_torch_or_scikit_learn():
    code = ("import sys, facekeypoints, facekeypoints.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'skorch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_every_public_submodule_is_an_attribute_loaded_on_first_use():
    code = ("import sys, facekeypoints as fk\n"
            "names = ['callbacks', 'checkpoint', 'data', 'metrics', 'net', 'persist', 'plots',\n"
            "         'reports', 'runs', 'schedules', 'specialists', 'sweep', 'sweep_report']\n"
            "heavy = ('plots', 'reports', 'runs', 'specialists', 'sweep', 'net', 'persist')\n"
            "before = [n for n in heavy if 'facekeypoints.' + n in sys.modules]\n"
            "mods = [getattr(fk, n).__name__ for n in names]\n"
            "print(before == [], mods == ['facekeypoints.' + n for n in names])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["True", "True"]
