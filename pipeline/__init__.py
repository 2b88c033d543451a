"""foresee's pipeline: the artifact cache, stage definitions, the ``foresee`` CLI and reports."""

__version__ = "0.1.0"
