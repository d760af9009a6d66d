"""The documentation site builds with Sphinx, warnings as errors, offline.

A broken reference, a docstring Sphinx cannot read, a README link to a page that is not
there, or a public module missing from the API reference fails here. The tutorial is shown
with the outputs saved in it (nothing is executed) and nothing is fetched (no intersphinx).
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

import facekeypoints  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / ".doctrees"), str(DOCS), str(out / "html")],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out / "html"


def test_the_site_builds_without_warnings(site):
    assert (site / "index.html").exists()


def test_every_public_module_has_an_api_entry(site):
    html = "".join(p.read_text() for p in (site / "api").glob("*.html"))
    documented = set(re.findall(r'id="module-(facekeypoints[\w.]*)"', html))
    package = Path(facekeypoints.__file__).parent
    expected = {f"facekeypoints.{p.stem}" for folder in facekeypoints.LAYER_FOLDERS
                for p in (package / folder).glob("*.py") if not p.stem.startswith("_")}
    expected |= {f"facekeypoints.cli.{p.stem}" for p in (package / "cli").glob("*.py")
                 if not p.stem.startswith("_")} | {"facekeypoints.cli"}
    assert expected - documented == set()
    assert 'id="facekeypoints.net.NeuralNet"' in html
    assert 'id="facekeypoints.tracking.TensorBoardLogger"' in html


def test_the_readme_guides_tutorial_and_examples_are_pages(site):
    guide = (site / "guide.html").read_text()
    assert "Schedules" in guide and "When training dies" in guide
    assert 'href=".notebooks/tutorial.html"' in guide
    tutorial = (site / ".notebooks" / "tutorial.html").read_text()
    assert "<img" in tutorial            # a saved output picture, shown as saved
    assert "AdjustVariable" in (site / "examples.html").read_text()
    for page in DOCS.glob("*.md"):       # every docs/*.md is a page of the site
        assert (site / f"{page.stem}.html").exists(), page.name


def test_a_reference_to_a_name_the_package_lacks_fails_the_build(tmp_path):
    (tmp_path / "index.md").write_text(
        "# Page\n\n{py:class}`facekeypoints.NeuralNet` trains; "
        "{py:func}`facekeypoints.no_such_function` does not exist.\n")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-c", str(DOCS),
         str(tmp_path), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode != 0
    assert "facekeypoints.no_such_function" in done.stderr
    assert "facekeypoints.NeuralNet" not in done.stderr
