"""``python -m bookbuild``: build the book, or set models side by side (see :mod:`bookbuild.cli`)."""
from .cli import main

main()
