"""The ``xling`` command line (installed as ``xling.cli``): a thin Typer layer over the library."""
