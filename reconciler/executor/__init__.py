"""Runs a Plan against the PodApi and JobRunner protocols, in parallel, write-ahead."""
