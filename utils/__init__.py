"""The small package behind the book: models, output heads, corpora, activations, fits and figures.

Chapters import from the submodules directly (``from utils.encoding.fit import fit_encoding``).
"""
__version__ = "0.1.0"
