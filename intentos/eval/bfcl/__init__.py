"""BFCL v4 (Berkeley Function Calling Leaderboard) categories as intentos eval suites.

`intentos eval --suite bfcl:CATEGORY` runs a category of BFCL's own data, read from the
installed `bfcl-eval` package (an optional install: `pip install --no-deps bfcl-eval`,
or `make bfcl`), through the same Controller, records and report as our own suites:

- single-turn categories (simple_python, multiple, parallel, parallel_multiple,
  irrelevance): the case's functions become a Function Table, the workflow's calls are
  scored by BFCL's AST checker (loaded from the package without its heavy imports);
- multi_turn_base: the case's API classes are apps with BFCL's initial configuration,
  each user turn is resolved and executed on them, and BFCL's state and response
  checkers decide.

Nothing here imports bfcl_eval at import time, so intentos works without it.
"""
