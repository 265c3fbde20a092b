"""`python -m reconciler` runs the podctl command line."""

from reconciler.cli import main

main()
