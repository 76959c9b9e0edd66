"""The package's version, written once.

``pyproject.toml`` reads it for the distribution's metadata (``[tool.setuptools.dynamic]``,
parsed from this file without importing the package) and `metapbt` re-exports it as
``metapbt.__version__``.
"""

__version__ = "0.1.0"
