"""What every skill app is built from, so the four skills (and a third-party one) work the same way.

- `errors`: the one error policy (`skill_errors`): what a user can act on is one AppError line
  naming sandbox-relative paths;
- `files`: bounded reads and atomic writes of sandbox files (and of local files, for the CLIs);
- `cancel`: the context's cancel flag, checked inside every long computation;
- `settings`: a skill's section of the context settings;
- `modelfile`: the one model-file format, reader and writer (a header and a state dict, never code).

A skill is `ops.py` (its results and the work on real paths, which the CLI and the benchmarks use)
and `app.py` (the argument models and the App, which maps sandbox paths onto the ops).
"""

from intentos.skills.kit import modelfile
from intentos.skills.kit.cancel import Cancel, Cancelled, check
from intentos.skills.kit.errors import one_line, skill_errors
from intentos.skills.kit.files import (
    MAX_DATA_BYTES,
    LocalReadError,
    TextProblem,
    decode_text,
    existing_file,
    folder_entries,
    folder_target,
    make_room,
    read_file,
    read_local,
    size_text,
    target,
    too_large,
    write_file,
    write_local,
    write_target,
)
from intentos.skills.kit.settings import section

__all__ = [
    "MAX_DATA_BYTES", "Cancel", "Cancelled", "LocalReadError", "TextProblem", "check", "decode_text",
    "existing_file", "folder_entries", "folder_target", "make_room", "modelfile", "one_line", "read_file",
    "read_local", "section", "size_text", "skill_errors", "target", "too_large", "write_file", "write_local",
    "write_target",
]
