"""``.. public-api::``: autodoc entries for the public names that exist.

The API page lists the names it wants to document explicitly; names that the
installed package does not (yet) define are skipped, and a directive left
with nothing to show produces nothing (not even its title), so the page never
breaks the build while the package grows::

    .. public-api:: Estimators
       :module: mtlinear

       MultiTaskRegressor
       alpha_max
       datasets.make_multitask_regression

gives a section "Estimators" with a summary table followed by ``autoclass`` /
``autofunction`` entries.  Names may be dotted (a submodule's attribute).
With ``:remaining:`` instead of a list, the directive documents the names of
the module's ``__all__`` that no earlier ``public-api`` directive of the page
showed.  ``:undoc-members:`` also lists the methods that have no docstring.
"""
import importlib
import inspect

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)


def _lookup(module, dotted):
    """``module.a.b`` for ``dotted = "a.b"`` (submodules imported), or None."""
    obj = module
    for part in dotted.split("."):
        if inspect.ismodule(obj) and not hasattr(obj, part):
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _own_members(cls):
    """Public methods and properties of ``cls`` written in mtlinear.

    Members of a private base class (from a ``_module``) are shown with the
    class; those of a public base (documented on its own) and the ones that
    scikit-learn's base classes add (``get_params``, ``set_*_request``, the
    mixins' ``score``, whose docstrings point into scikit-learn's own
    documentation) are left out.
    """
    names = []
    for klass in reversed(cls.__mro__):
        private_base = any(part.startswith("_")
                           for part in klass.__module__.split("."))
        if not klass.__module__.startswith("mtlinear") or not (
                klass is cls or private_base):
            continue
        for name, member in vars(klass).items():
            if (not name.startswith("_") and name not in names
                    and (callable(member) or isinstance(member, property))):
                names.append(name)
    return names


class PublicAPI(SphinxDirective):
    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {"module": directives.unchanged_required,
                   "remaining": directives.flag,
                   "undoc-members": directives.flag}

    def _shown(self):
        # temp_data lives while one document is read
        return self.env.temp_data.setdefault("public_api_shown", [])

    def _wanted(self, module):
        if "remaining" not in self.options:
            return [line.strip() for line in self.content if line.strip()]
        shown = self._shown()
        return [name for name in getattr(module, "__all__", [])
                if not any(getattr(module, name, None) is obj for obj in shown)]

    def run(self):
        module_name = self.options.get("module", "mtlinear")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            logger.info(f"public-api: no module {module_name}; skipped")
            return []
        names = []
        for name in self._wanted(module):
            if _lookup(module, name) is not None:
                names.append(name)
            else:
                logger.info(f"public-api: {module_name}.{name} does not exist; "
                            "skipped")
        if not names:
            return []

        lines = []
        if self.arguments:
            title = self.arguments[0]
            lines += [title, "-" * len(title), ""]
        lines += [f".. currentmodule:: {module_name}", "", ".. autosummary::", ""]
        lines += [f"   {name}" for name in names]
        for name in names:
            obj = _lookup(module, name)
            self._shown().append(obj)
            if inspect.isclass(obj):
                lines += ["", f".. autoclass:: {module_name}.{name}"]
                members = _own_members(obj)
                if members:
                    lines += [f"   :members: {', '.join(members)}"]
                    if "undoc-members" in self.options:
                        lines += ["   :undoc-members:"]
            else:
                lines += ["", f".. autofunction:: {module_name}.{name}"]
        container = nodes.section() if self.arguments else nodes.container()
        nested_parse_with_titles(self.state,
                                 StringList(lines, source=self.get_source_info()[0]),
                                 container)
        return container.children


def setup(app):
    app.add_directive("public-api", PublicAPI)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
