"""Analysis: figures and tables of finished runs."""
