"""OpenMP's wait policy: facekeypoints asks for sleeping waits unless the user chose."""
import os
import subprocess
import sys

from facekeypoints._openmp import prefer_passive_waits


def test_passive_waits_set_when_nothing_chosen():
    environ = {}
    assert prefer_passive_waits(environ, modules={})
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_user_choice_and_loaded_torch_are_kept():
    for environ in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        before = dict(environ)
        assert not prefer_passive_waits(environ, modules={})
        assert environ == before
    environ = {}
    assert not prefer_passive_waits(environ, modules={"torch": object()})
    assert environ == {}


def test_importing_the_package_first_sets_it_for_torch():
    code = "import facekeypoints, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == "ACTIVE"
