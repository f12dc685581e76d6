#!/usr/bin/env bash
# GPU offload, for real: build llama-cpp-python with CUDA, check it offloads, and time both Qwen models.
#
#   benchmarks/gpu_check.sh              build (unless the installed llama_cpp already offloads), then measure
#   benchmarks/gpu_check.sh --build      only build (what `make gpu` runs)
#   benchmarks/gpu_check.sh --measure    only measure (the build is already there)
#
# The CUDA compiler: $CUDA_HOME (or $CUDA_PATH) when it holds bin/nvcc, else an nvcc on PATH, else
# /usr/local/cuda; cuBLAS from that tree or a Python environment's nvidia/cu13. What is missing comes from
# NVIDIA's PyPI wheels, installed into $CUDA_WHEELS (default .venv/cuda). The CUDA 12 wheels
# (nvidia-cuda-nvcc-cu12, every version) carry only ptxas, no nvcc; CUDA 13's do
# (cuda-toolkit[nvcc,cudart,cublas,crt,nvvm,cccl]), so the wheels used are CUDA 13 (a driver >= 580).
#
# Measured per model, each in its own process: the GPU with every layer offloaded (n_gpu_layers=-1)
# and the CPU alone (CUDA_VISIBLE_DEVICES= hides the GPU): prompt tokens/s over a fixed prompt of
# $N_PROMPT tokens and decode tokens/s over $N_DECODE greedy tokens.
#
# Environment: PY (default .venv/bin/python), CUDA_ROOT (the merged toolkit tree made for the build,
# default .venv/cuda-root), CUDA_ARCHS (default: native where nvidia-smi sees a GPU,
# else 90), CUDA_TOOLKIT_VERSION (default 13.0.2), LLAMA_CPP_SRC (an sdist or source folder to build
# instead of fetching llama-cpp-python's sdist), MODELS (default: qwen2.5-coder-0.5b qwen2.5-coder-1.5b),
# N_PROMPT (1000), N_DECODE (128), N_THREADS (default: the physical cores).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
CUDA_WHEELS=${CUDA_WHEELS:-.venv/cuda}
CUDA_ROOT=${CUDA_ROOT:-.venv/cuda-root}
CUDA_TOOLKIT_VERSION=${CUDA_TOOLKIT_VERSION:-13.0.2}
MODELS=${MODELS:-"qwen2.5-coder-0.5b qwen2.5-coder-1.5b"}
N_PROMPT=${N_PROMPT:-1000}
N_DECODE=${N_DECODE:-128}
MODE=${1:-all}
case "$MODE" in all|--build|--measure) ;; *) echo "usage: $0 [--build|--measure]" >&2; exit 2 ;; esac

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'gpu_check: %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || command -v "$PY" >/dev/null || die "no python at $PY (make install, or PY=...)"

gpu_offload() {  # prints True/False: does the installed llama_cpp offload to a GPU?
    "$PY" -c 'import llama_cpp; print(bool(llama_cpp.llama_supports_gpu_offload()))' 2>/dev/null || echo False
}

# -- the CUDA toolkit -----------------------------------------------------------------------------------
#
# ggml-cuda needs nvcc, the CUDA runtime and cuBLAS, and they need not lie in one tree: an image may have
# nvcc in /usr/local/cuda and cuBLAS only in a Python environment's nvidia/cu13 (PyTorch's wheels), and
# NVIDIA's wheels lack the lib64/ and unversioned .so names that nvcc and CMake look for. So the build uses
# one tree made here, $CUDA_ROOT: a copy of nvcc's bin/ (nvcc takes its root from where it lies), and
# links to the headers and libraries of both.

nvcc_home() {  # the tree whose bin/ holds nvcc, or nothing
    local c
    for c in "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
        if [ -n "$c" ] && [ -x "$c/bin/nvcc" ]; then echo "$c"; return; fi
    done
    if command -v nvcc >/dev/null 2>&1; then  # it may be a wrapper script: ask nvcc where it lies
        c=$(nvcc --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ _HERE_=//p' | head -n 1)
        if [ -n "$c" ] && [ -x "$c/nvcc" ]; then readlink -f "$c/.."; return; fi
    fi
    if [ -x /usr/local/cuda/bin/nvcc ]; then readlink -f /usr/local/cuda; return; fi
    if [ -x "$CUDA_WHEELS/nvidia/cu13/bin/nvcc" ]; then echo "$CUDA_WHEELS/nvidia/cu13"; fi
}

cublas_home() {  # a tree with libcublas.so.* in lib*/ and cublas_v2.h in include/, or nothing
    local c d
    for c in "$@"; do
        for d in "$c/lib64" "$c/lib" "$c/targets/x86_64-linux/lib"; do
            if compgen -G "$d/libcublas.so.[0-9]*" >/dev/null && { [ -e "$c/include/cublas_v2.h" ] \
                    || [ -e "$c/targets/x86_64-linux/include/cublas_v2.h" ]; }; then echo "$c"; return; fi
        done
    done
}

site_trees() {  # nvidia/cu13 and nvidia/cublas folders in the site-packages of our python and python3
    local py
    for py in "$PY" python3; do
        command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
        "$py" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' \
            2>/dev/null | while read -r sp; do
                for d in "$sp/nvidia/cu13" "$sp/nvidia/cublas"; do [ -d "$d" ] && echo "$d"; done
            done
    done
}

link_entries() {  # link each entry of the folders $2... into folder $1 (the first of a name wins)
    local into=$1 dir e; shift
    mkdir -p "$into"
    for dir in "$@"; do
        [ -d "$dir" ] || continue
        for e in "$dir"/*; do
            [ -e "$e" ] || continue
            [ -e "$into/$(basename "$e")" ] || ln -s "$(readlink -f "$e")" "$into/$(basename "$e")"
        done
    done
}

make_cuda_root() {  # prints $CUDA_ROOT, made from an nvcc tree and a cuBLAS tree (PyPI wheels when missing)
    local nvcc cublas trees=() t f base lib
    nvcc=$(nvcc_home)
    mapfile -t trees < <(site_trees)
    cublas=$(cublas_home "${nvcc:-/nonexistent}" "${trees[@]}" "$CUDA_WHEELS/nvidia/cu13")
    if [ -z "$nvcc" ] || [ -z "$cublas" ]; then
        local extras="cudart,cublas" missing="cuBLAS"
        [ -n "$nvcc" ] || { extras="nvcc,cudart,cublas,crt,nvvm,cccl"; missing="nvcc"; }
        say "no $missing here: installing cuda-toolkit[$extras]==$CUDA_TOOLKIT_VERSION from PyPI into $CUDA_WHEELS"
        "$PY" -m pip install --quiet --no-cache-dir --upgrade --target "$CUDA_WHEELS" \
            "cuda-toolkit[$extras]==$CUDA_TOOLKIT_VERSION" >&2 || die "could not install the CUDA wheels"
        nvcc=${nvcc:-$(nvcc_home)}
        cublas=$(cublas_home "$CUDA_WHEELS/nvidia/cu13")
    fi
    [ -n "$nvcc" ] || die "no nvcc, even after installing the CUDA wheels"
    [ -n "$cublas" ] || die "no cuBLAS (libcublas.so.* and cublas_v2.h), even after installing the CUDA wheels"
    say "nvcc from $nvcc, cuBLAS from $cublas"
    rm -rf "$CUDA_ROOT" && mkdir -p "$CUDA_ROOT"
    cp -al "$nvcc/bin" "$CUDA_ROOT/bin" 2>/dev/null || cp -a "$nvcc/bin" "$CUDA_ROOT/bin"
    ln -s "$(readlink -f "$nvcc/nvvm")" "$CUDA_ROOT/nvvm"
    link_entries "$CUDA_ROOT/include" "$nvcc/include" "$nvcc/targets/x86_64-linux/include" \
        "$cublas/include" "$cublas/targets/x86_64-linux/include"
    link_entries "$CUDA_ROOT/lib64" "$nvcc/lib64" "$nvcc/lib" "$nvcc/targets/x86_64-linux/lib" \
        "$cublas/lib64" "$cublas/lib" "$cublas/targets/x86_64-linux/lib"
    rm -rf "$CUDA_ROOT/lib64/stubs"; mkdir -p "$CUDA_ROOT/lib64/stubs"
    for f in "$CUDA_ROOT"/lib64/lib*.so.[0-9]*; do  # unversioned names, for the linker
        [ -e "$f" ] || continue
        base="${f%%.so.*}.so"
        [ -e "$base" ] || ln -s "$(readlink -f "$f")" "$base"
    done
    # the driver's libcuda, which ggml-cuda's memory pool (VMM) links against
    lib=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
    for t in "$lib" /usr/local/nvidia/lib64/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libcuda.so.1 \
             "$nvcc/lib64/stubs/libcuda.so" "$nvcc/targets/x86_64-linux/lib/stubs/libcuda.so"; do
        if [ -n "$t" ] && [ -e "$t" ]; then ln -s "$(readlink -f "$t")" "$CUDA_ROOT/lib64/stubs/libcuda.so"; break; fi
    done
    ln -s lib64 "$CUDA_ROOT/lib"
    mkdir -p "$CUDA_ROOT/targets/x86_64-linux"
    ln -s ../../include "$CUDA_ROOT/targets/x86_64-linux/include"
    ln -s ../../lib64 "$CUDA_ROOT/targets/x86_64-linux/lib"
    (cd "$CUDA_ROOT" && pwd)
}

build() {
    local root archs version src vmm="" isolation="" pkg f
    root=$(make_cuda_root)
    say "CUDA root: $root ($("$root/bin/nvcc" --version | grep -o 'release [0-9.]*' || echo 'nvcc: unknown version'))"
    export CUDA_HOME="$root" CUDAToolkit_ROOT="$root" CUDACXX="$root/bin/nvcc"
    export PATH="$root/bin:$PATH"
    export LD_LIBRARY_PATH="$root/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ -z "${CUDA_ARCHS:-}" ]; then
        if nvidia-smi -L >/dev/null 2>&1; then archs=native; else archs=90; fi  # 90: Hopper (H100, H200)
    else
        archs=$CUDA_ARCHS
    fi
    if [ ! -e "$root/lib64/stubs/libcuda.so" ]; then
        vmm="-DGGML_CUDA_NO_VMM=ON"  # nothing to link the virtual-memory pool against
        say "no libcuda.so to link: building with GGML_CUDA_NO_VMM=ON"
    fi
    export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_COMPILER=$root/bin/nvcc -DCUDAToolkit_ROOT=$root -DCMAKE_CUDA_ARCHITECTURES=$archs $vmm"
    export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
    # the installed version's sdist, unless a source is given (a machine without an index may have none installed)
    version=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
    [ -n "$version" ] || [ -n "${LLAMA_CPP_SRC:-}" ] || die "no llama-cpp-python installed: give LLAMA_CPP_SRC"
    src=${LLAMA_CPP_SRC:-"llama-cpp-python==$version"}
    # where scikit-build-core is installed already, build with it (a machine without an index can then build)
    if "$PY" -c 'import scikit_build_core' 2>/dev/null; then isolation="--no-build-isolation"; fi
    say "building llama-cpp-python $version with CUDA (CMAKE_ARGS=$CMAKE_ARGS)"
    "$PY" -m pip install --force-reinstall --no-cache-dir --no-deps $isolation \
        --no-binary llama-cpp-python "$src" >&2
    # llama_cpp's libraries find their neighbours through RPATH $ORIGIN: link the CUDA runtime and cuBLAS
    # there, so loading needs no LD_LIBRARY_PATH (the wheels' libraries are on no loader path)
    pkg=$("$PY" -c 'import importlib.util as u; print(u.find_spec("llama_cpp").submodule_search_locations[0])')
    for f in "$root"/lib64/libcudart.so.[0-9]* "$root"/lib64/libcublas.so.[0-9]* "$root"/lib64/libcublasLt.so.[0-9]*; do
        [ -e "$f" ] && ln -sf "$(readlink -f "$f")" "$pkg/lib/$(basename "$f")"
    done
    [ "$(gpu_offload)" = True ] || die "llama_cpp was built but llama_supports_gpu_offload() is False"
    say "llama_cpp.llama_supports_gpu_offload() = True"
}

# -- measuring ------------------------------------------------------------------------------------------

# One model, one device, in a fresh process: prints one JSON line.
MEASURE='
import json, os, sys, time
import llama_cpp  # before numpy: on an image whose numpy came first, loading the CUDA build crashed (SIGSEGV)
import numpy as np
from intentos.backends import llamacpp_cpu
from intentos.backends.spec import parse_spec

name, ngl, n_prompt, n_decode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
path = parse_spec(f"llamacpp:{name}").model_path()
llamacpp_cpu.apply()  # an AMX CPU crashes in decode when weights are repacked
threads = int(os.environ.get("N_THREADS") or 0)
if not threads:  # the physical cores: distinct (physical id, core id) pairs
    ids, pairs = {}, set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("physical id", "core id"):
                ids[key] = value.strip()
            if key == "core id":
                pairs.add((ids.get("physical id"), ids["core id"]))
    except OSError:
        pass
    threads = len(pairs) or os.cpu_count() or 1
start = time.perf_counter()
llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_prompt + n_decode + 64, n_batch=512, n_ubatch=512,
                      n_gpu_layers=ngl, n_threads=threads, n_threads_batch=threads, verbose=False)
load_s = time.perf_counter() - start
text = ("def handle(request):\n    # route the request by its intent and log what happened\n"
        "    intent = request.get(\"intent\", \"\")\n    return {\"ok\": True, \"intent\": intent}\n\n") * 400
tokens = llm.tokenize(text.encode(), add_bos=True)[:n_prompt]
assert len(tokens) == n_prompt, len(tokens)
llm.eval(tokens[:8]); llm.reset()  # warm-up: first-call allocations are not the prompt rate
start = time.perf_counter()
llm.eval(tokens)
prompt_s = time.perf_counter() - start
n_vocab = llm.n_vocab()
start = time.perf_counter()
for _ in range(n_decode):
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
    llm.eval([int(np.argmax(logits))])  # greedy; an end-of-text token is decoded like any other
decode_s = time.perf_counter() - start
print(json.dumps({"model": name, "device": "gpu" if ngl else "cpu", "n_gpu_layers": ngl, "threads": threads,
                  "load_s": round(load_s, 2), "prompt_tokens": n_prompt,
                  "prompt_tok_s": round(n_prompt / prompt_s, 1), "decode_tokens": n_decode,
                  "decode_tok_s": round(n_decode / decode_s, 1),
                  "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload())}))
'

measure() {
    local offload name rows=() line
    offload=$(gpu_offload)
    say "llama_cpp.llama_supports_gpu_offload() = $offload"
    [ "$offload" = True ] || die "this llama_cpp cannot offload to a GPU: run $0 --build first"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
    for name in $MODELS; do
        say "$name on the GPU (n_gpu_layers=-1)"
        line=$("$PY" -c "$MEASURE" "$name" -1 "$N_PROMPT" "$N_DECODE") || die "the GPU run of $name failed"
        echo "$line"; rows+=("$line")
        say "$name on the CPU (the GPU hidden)"
        line=$(CUDA_VISIBLE_DEVICES='' "$PY" -c "$MEASURE" "$name" 0 "$N_PROMPT" "$N_DECODE") \
            || die "the CPU run of $name failed"
        echo "$line"; rows+=("$line")
    done
    printf '%s\n' "${rows[@]}" | "$PY" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print()
print("| model | device | prompt tok/s | decode tok/s | load s |")
print("|---|---|---:|---:|---:|")
for r in rows:
    where = "GPU, all layers" if r["device"] == "gpu" else "CPU, {} threads".format(r["threads"])
    print("| {model} | {where} | {prompt_tok_s} | {decode_tok_s} | {load_s} |".format(where=where, **r))
print("\n(prompt: {prompt_tokens} tokens; decode: {decode_tokens} greedy tokens)".format(**rows[0]))
'
}

case "$MODE" in
    --build) build ;;
    --measure) measure ;;
    all)
        if [ "$(gpu_offload)" = True ]; then say "llama_cpp already offloads to a GPU: no rebuild"; else build; fi
        measure ;;
esac
