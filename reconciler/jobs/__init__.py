"""Pure job logic: fingerprints and the on-pod layout of job runs (no I/O)."""
