"""stackbox: an OpenStack-compatible cloud in one Python package."""

__version__ = "0.1.0"
