"""Sphinx configuration of the lightreg site: the user guide (Markdown pages through MyST), the API reference
(autodoc + autosummary of the public import paths) and the example gallery (sphinx-gallery, run at build time).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (what ``.ci/run`` runs). The build works
offline: intersphinx inventories that cannot be fetched leave plain-text links and an info line, not a warning.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import lightreg

project = "lightreg"
author = "the lightreg authors"
copyright = "2026, the lightreg authors"
release = version = lightreg.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

# -- MyST: the guide pages are plain GitHub Markdown; their links point at `page.md#github-style-anchor` --------------
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# -- API reference -----------------------------------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a public module's members are its __all__
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_inherit_docstrings = False  # Lightning's hook docstrings are Lightning's documentation, not ours
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
strip_signature_backslash = True  # napoleon then escapes a trailing underscore: `lambda_` stays `lambda_`

# -- intersphinx: short timeout, and an unreachable inventory is not an error (the build machine is offline) -----
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "lightning": ("https://lightning.ai/docs/pytorch/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "omegaconf": (
        "https://omegaconf.readthedocs.io/en/latest",
        None,
    ),  # Hydra's config objects (hydra.cc has no inventory)
}
intersphinx_timeout = 3


class _InfoNotWarning(logging.Filter):
    """Turn a warning whose message contains ``fragment`` into an info line, so that ``-W`` does not fail on it."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and self.fragment in str(record.msg):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


INFO_NOT_WARNING = {
    # offline, links to torch, Lightning, scikit-learn, NumPy and OmegaConf stay plain text
    "sphinx.sphinx.ext.intersphinx": "failed to reach any of the inventories",
    # the user guide's globs (a page on using a trained model, then every other page) may have nothing to add
    "sphinx.sphinx.directives.other": "didn't match any documents",
}


# -- gallery -----------------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "write_computation_times": False,
}
os.environ.setdefault("MPLBACKEND", "Agg")

# -- HTML --------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "lightreg"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "header_links_before_dropdown": 5,
}
html_show_sourcelink = False


def _skip_foreign_members(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out members a base class defines on lightreg's classes (scikit-learn's ``set_*_request``)."""
    module = getattr(obj, "__module__", None)
    return True if what == "class" and isinstance(module, str) and not module.startswith("lightreg") else None


def _private_base_parameters(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Append the docstring of a private lightreg base class (its ``Args:``) to a public class that inherits its
    parameters (``LightregClassifier`` from ``_LightregEstimator``): the reference leaves private classes out."""
    if what != "class":
        return
    for base in inspect.getmro(obj)[1:]:
        if base.__name__.startswith("_") and base.__module__.startswith("lightreg") and base.__doc__:
            lines.extend(["", *inspect.cleandoc(base.__doc__).splitlines()[1:]])


def setup(app: Any) -> None:
    for logger, fragment in INFO_NOT_WARNING.items():
        logging.getLogger(logger).addFilter(_InfoNotWarning(fragment))
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-docstring", _private_base_parameters, priority=400)  # before napoleon (500)
