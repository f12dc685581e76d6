"""intentos: a local, private, intent-driven desktop agent.

The plugin API, all an app package needs, is importable from here::

    from intentos import App, AppError, Context, Effect, function

(see "Writing a plugin app" in the README). Built-in apps and skills use the same names.
"""

from intentos.app import App, Context
from intentos.errors import AppError
from intentos.function import Effect, function

__version__ = "0.1.0"
__all__ = ["App", "AppError", "Context", "Effect", "__version__", "function"]
