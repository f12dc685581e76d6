"""Screens of the TUI: main (intent → plan → run), runs, functions, help, and small dialogs."""
