"""The version of difflab, in one place: written into every run, evaluation and export it makes."""

__version__ = "0.2.0"
