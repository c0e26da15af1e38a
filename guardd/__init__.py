"""guardd: the removable-media guard daemon and its command-line clients."""

__version__ = "0.1.0"
