"""Figure functions of the book, one module per topic."""
