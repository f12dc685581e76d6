"""intentos: a local, private, intent-driven desktop agent."""

__version__ = "0.1.0"
