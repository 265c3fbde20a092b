"""Kept for code that imports the old path: terminal-safe text lives in reconciler.textsafe."""

from reconciler.textsafe import CSI_MARK, shown, shown_cut, shown_inline, terminal

__all__ = ["CSI_MARK", "shown", "shown_cut", "shown_inline", "terminal"]
