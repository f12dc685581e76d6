"""Widgets of the TUI, one concept each."""
