"""kubelabel's annotation API server."""

__version__ = "0.1.0"
