"""foresee's pipeline: the artifact cache, stage definitions, the ``foresee`` CLI and reports."""

#: foresee's version (``foresee --version``, every artifact manifest, pyproject's version); the
#: changes of each version are in CHANGELOG.md.
__version__ = "0.2.0.dev0"
