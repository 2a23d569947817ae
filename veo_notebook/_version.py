"""The toolkit's version, in one place: modules import it from here, not the package root."""

__version__ = "0.1.0"
