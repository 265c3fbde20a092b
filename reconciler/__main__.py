"""`python -m reconciler` runs the podctl command line."""

from reconciler.entry import main

main()
