"""Sphinx configuration of the mtlinear documentation."""
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))
sys.path.insert(0, str(HERE.parent))  # the package of this checkout

import mtlinear  # noqa: E402

project = "mtlinear"
author = "mtlinear developers"
copyright = "mtlinear developers"
release = mtlinear.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "public_api",
]

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]
default_role = "literal"

# --- autodoc / numpydoc: one page, the methods listed by autodoc itself
autodoc_default_options = {"member-order": "bysource"}
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- sphinx-gallery: examples run at build time (generated data, scikit-learn
# datasets; School only when MTLINEAR_SCHOOL names its file)
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "backreferences_dir": None,
    "reference_url": {"mtlinear": None},
}

# the examples plot with the non-interactive backend
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")

html_theme = "alabaster"
html_theme_options = {
    "description": "Regularized linear multi-task learning",
    "fixed_sidebar": True,
}
html_static_path = []
