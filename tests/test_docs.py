"""The documentation site's configuration, checked without building it (``.ci/run`` builds it, examples included):
the config loads, every page has one title, the API reference lists importable public modules, every gallery
example has a title, and unreachable intersphinx inventories are an info line rather than a ``-W`` failure."""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def conf() -> dict:
    namespace: dict = {"__file__": str(DOCS / "conf.py")}
    exec(compile((DOCS / "conf.py").read_text(), str(DOCS / "conf.py"), "exec"), namespace)
    return namespace


def test_config_names_the_extensions_and_an_offline_safe_intersphinx(conf: dict) -> None:
    assert {"myst_parser", "sphinx.ext.autosummary", "sphinx.ext.napoleon", "sphinx_gallery.gen_gallery"} <= set(
        conf["extensions"]
    )
    assert {"torch", "lightning", "sklearn", "numpy"} <= set(conf["intersphinx_mapping"])
    assert 0 < conf["intersphinx_timeout"] <= 5, "an unreachable inventory must not stall the build"
    gallery = conf["sphinx_gallery_conf"]
    assert (DOCS / gallery["examples_dirs"]).resolve() == ROOT / "examples"


def test_unreachable_inventory_is_not_a_warning(conf: dict) -> None:
    record = logging.LogRecord(
        "sphinx", logging.WARNING, __file__, 1, "failed to reach any of the inventories", (), None
    )
    fragment = conf["INFO_NOT_WARNING"]["sphinx.sphinx.ext.intersphinx"]
    assert conf["_InfoNotWarning"](fragment).filter(record) and record.levelno == logging.INFO
    other = logging.LogRecord("sphinx", logging.WARNING, __file__, 1, "undefined label: 'x'", (), None)
    assert conf["_InfoNotWarning"](fragment).filter(other) and other.levelno == logging.WARNING


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_each_page_has_one_title(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # '# comments' in code blocks are not titles
    titles = re.findall(r"^# .+", text, flags=re.M)
    assert len(titles) == 1, f"{page.name}: {titles}: one '# Title' per page (the toctree shows it)"


def test_api_reference_lists_public_modules_with_all() -> None:
    listed = re.findall(r"^\s+(lightreg\.\w+)$", (DOCS / "api" / "index.md").read_text(), flags=re.M)
    assert set(listed) >= {
        "lightreg.callbacks",
        "lightreg.penalties",
        "lightreg.models",
        "lightreg.sklearn",
        "lightreg.compact",
        "lightreg.data",
        "lightreg.lambda_path",
    }
    for name in listed:
        module = importlib.import_module(name)
        assert module.__all__, f"{name}: the reference documents its __all__"
        missing = [member for member in module.__all__ if not hasattr(module, member)]
        assert not missing, f"{name}.__all__ names {missing}, which it does not define"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("plot_*.py")), ids=lambda p: p.name)
def test_gallery_example_starts_with_a_titled_docstring(example: Path) -> None:
    match = re.match(r'"""\n(.+)\n(=+)\n', example.read_text())
    assert match, f"{example.name}: sphinx-gallery needs a docstring that opens with a title and its '=' underline"
    assert len(match[2]) >= len(match[1]), f"{example.name}: the title's underline is shorter than the title"


def test_readme_links_point_at_files() -> None:
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]*)", (ROOT / "README.md").read_text())
    assert links and all((ROOT / link).exists() for link in links), [x for x in links if not (ROOT / x).exists()]
