"""``python -m bookbuild``: build the book, or set models side by side (see :mod:`bookbuild.cli`)."""
from .cli import main

if __name__ == "__main__":  # a process spawned by bookbuild.execute imports this module as well
    main()
