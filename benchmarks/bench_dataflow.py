"""Benchmark for runtime prediction of dataflow jobs: Bellamy (arXiv:2107.13921) against Ernest (NSDI 2016).

On the C3O data (../shared/data/c3o: grep, kmeans, pagerank, sgd; scale-outs 2-12, five repetitions
per configuration). A context is one distinct (machine_type, data_size_MB, job parameters). For every
target context:

- the contexts of the algorithm are split into --folds groups (seeded, by context); Bellamy is
  pre-trained once per fold on the runs of all OTHER folds, so pretraining never sees the target
  context (nor the other contexts of its fold), and that model is reused for every target context of
  the held-out fold; it is then fine-tuned on the target context's runs at 3 of its scale-outs (all
  repetitions of those three);
- Ernest is fit (NNLS) on the same runs;
- both predict every other scale-out of the context; the error is |pred - mean| / mean against the
  mean runtime of that configuration's repetitions. Interpolation = a scale-out inside the range of
  the three given ones, extrapolation = outside.

Several 3-scale-out subsets are drawn per context (--splits, seeded); errors are averaged per context,
then over contexts. Run-to-run noise = the mean relative deviation of single repetitions from their
configuration's mean: no predictor of the mean can be expected to beat it by much.

    .venv/bin/python benchmarks/bench_dataflow.py [--algorithms grep sgd] [--splits 6] [--folds 5]
        [--contexts N] [--set finetune_lr=0.003 ...] [--cache DIR]

--contexts N evaluates only N target contexts per algorithm (quick runs); the folds are still formed
over all contexts. --cache DIR keeps pre-trained fold models (keyed by the pretraining settings), so
fine-tuning choices can be compared without pre-training again.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from intentos.skills.dataflow.bellamy import Bellamy, BellamyConfig
from intentos.skills.dataflow.ernest import Ernest
from intentos.skills.dataflow.history import History, Run, load_history

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "c3o"
ALGORITHMS = ["grep", "kmeans", "pagerank", "sgd"]


def noise(history: History) -> float:
    """Mean |run - config mean| / config mean over all repetitions."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in history.runs:
        groups[(*r.context_key(), r.scaleout)].append(r.runtime_s)
    devs = [abs(v - np.mean(vs)) / np.mean(vs) for vs in groups.values() if len(vs) > 1 for v in vs]
    return float(np.mean(devs))


def splits(scaleouts: list[int], k: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    combos = list(itertools.combinations(scaleouts, 3))
    if k >= len(combos):
        return combos
    return [combos[i] for i in sorted(rng.choice(len(combos), size=k, replace=False))]


def fold_of(keys: list[tuple[str, ...]], folds: int, seed: int) -> dict[tuple[str, ...], int]:
    """Context -> fold: a seeded permutation of the sorted contexts, dealt round-robin."""
    perm = np.random.default_rng(seed).permutation(len(keys))
    return {keys[j]: i % folds for i, j in enumerate(perm)}


PRETRAIN_FIELDS = ("hidden", "dropout", "lr", "weight_decay", "pretrain_epochs", "batch_size", "val_share",
                   "pretrain_patience", "seed")


def pretrained(history: History, train: list[Run], cfg: BellamyConfig, cache: Path | None, tag: str) -> Bellamy:
    if cache is not None:
        key = hashlib.sha1(json.dumps({f: getattr(cfg, f) for f in PRETRAIN_FIELDS}, sort_keys=True)
                           .encode()).hexdigest()[:10]
        path = cache / f"{history.algorithm}-{tag}-{key}.pt"
        if path.exists():
            model = Bellamy.load(path)
            model.header.config = cfg  # fine-tuning settings may differ from the cached run's
            return model
    model = Bellamy.pretrain(train, algorithm=history.algorithm, param_names=history.param_names, config=cfg)
    if cache is not None:
        model.save(path)
    return model


def evaluate(history: History, cfg: BellamyConfig, n_splits: int, max_contexts: int | None, folds: int,
             seed: int, cache: Path | None = None) -> dict[str, float]:
    contexts = history.contexts()
    keys = sorted(contexts)
    folds = min(folds, len(keys))
    fold = fold_of(keys, folds, seed)
    rng = np.random.default_rng(seed)
    targets = keys
    if max_contexts is not None and max_contexts < len(keys):
        targets = [keys[i] for i in sorted(rng.choice(len(keys), size=max_contexts, replace=False))]
    per_ctx: dict[str, list[float]] = defaultdict(list)
    n = 0
    for f in range(folds):
        in_fold = [k for k in targets if fold[k] == f]
        if not in_fold:
            continue
        t0 = time.perf_counter()
        train = [r for r in history.runs if fold[r.context_key()] != f]
        assert not {r.context_key() for r in train} & set(in_fold)  # pretraining never sees a target
        model = pretrained(history, train, cfg, cache, f"fold{f}of{folds}s{seed}")
        print(f"  {history.algorithm} fold {f + 1}/{folds}: pretrained on "
              f"{len({r.context_key() for r in train})} contexts ({time.perf_counter() - t0:.1f}s)",
              file=sys.stderr, flush=True)
        for key in in_fold:
            n += 1
            t0 = time.perf_counter()
            runs = contexts[key]
            means = {m: float(np.mean([r.runtime_s for r in runs if r.scaleout == m]))
                     for m in {r.scaleout for r in runs}}
            errs: dict[str, list[float]] = defaultdict(list)
            for given in splits(sorted(means), n_splits, rng):
                train_runs: list[Run] = [r for r in runs if r.scaleout in given]
                tuned = model.finetune(train_runs)
                ernest = Ernest.fit([r.scaleout for r in train_runs], [r.runtime_s for r in train_runs],
                                    size=runs[0].data_size_mb or 1)
                rest = [m for m in sorted(means) if m not in given]
                b_pred = tuned.predict(runs[0], rest)
                e_pred = ernest.predict(rest)
                for m, bp, ep in zip(rest, b_pred, e_pred, strict=True):
                    where = "interp" if min(given) < m < max(given) else "extrap"
                    errs[f"bellamy_{where}"].append(abs(bp - means[m]) / means[m])
                    errs[f"ernest_{where}"].append(abs(ep - means[m]) / means[m])
            for name, values in errs.items():
                per_ctx[name].append(float(np.mean(values)))
            print(f"  {history.algorithm} context {n}/{len(targets)} (fold {f + 1}) {key}: "
                  f"bellamy {np.mean(errs['bellamy_interp'] + errs['bellamy_extrap']):.3f} "
                  f"ernest {np.mean(errs['ernest_interp'] + errs['ernest_extrap']):.3f} "
                  f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    result = {name: float(np.mean(v)) for name, v in per_ctx.items()}
    result["contexts"] = len(targets)
    result["all_contexts"] = len(keys)
    result["folds"] = folds
    return result


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder with the C3O <algorithm>.tsv files")
    p.add_argument("--algorithms", nargs="+", default=ALGORITHMS)
    p.add_argument("--splits", type=int, default=6, help="3-scale-out subsets drawn per context (20 = all)")
    p.add_argument("--folds", type=int, default=5, help="folds of contexts; one pretraining per fold")
    p.add_argument("--contexts", type=int, default=None, help="evaluate only this many contexts per algorithm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrain-epochs", type=int, default=None)
    p.add_argument("--finetune-epochs", type=int, default=None)
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="other BellamyConfig fields")
    p.add_argument("--cache", type=Path, default=None, help="folder to keep pre-trained fold models in")
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = {k: v for k, v in (("pretrain_epochs", args.pretrain_epochs),
                                   ("finetune_epochs", args.finetune_epochs)) if v is not None}
    overrides.update({k: _value(v) for k, v in (item.split("=", 1) for item in args.set)})
    cfg = BellamyConfig(**{"seed": args.seed, **overrides})
    print(f"Bellamy config: {cfg.model_dump_json()}", flush=True)
    rows = []
    t0 = time.perf_counter()
    for alg in args.algorithms:
        history = load_history(args.data / f"{alg}.tsv", algorithm=alg)
        res = evaluate(history, cfg, args.splits, args.contexts, args.folds, args.seed, args.cache)
        rows.append((alg, res, noise(history)))
    print()
    print("MRE = mean relative error against the configuration mean; 3 scale-outs of the target context given;")
    print(f"pretraining per fold: the contexts of each algorithm are split into {args.folds} folds (seed {args.seed});")
    print("the target's fold is left out of pretraining, so the target context is never seen before fine-tuning;")
    print(f"{args.splits} subsets per context; averaged over contexts.")
    head = (f"{'algorithm':<10}{'contexts':>9}{'folds':>6}{'noise':>8}{'Bellamy int':>13}{'Ernest int':>12}"
            f"{'Bellamy ext':>13}{'Ernest ext':>12}{'Bellamy all':>13}{'Ernest all':>12}{'B<E':>5}{'B/noise':>9}")
    print(head)
    print("-" * len(head))
    for alg, r, nz in rows:
        b_all = (r.get("bellamy_interp", np.nan) + r["bellamy_extrap"]) / 2
        e_all = (r.get("ernest_interp", np.nan) + r["ernest_extrap"]) / 2
        wins = r.get("bellamy_interp", 0) < r.get("ernest_interp", 1) and r["bellamy_extrap"] < r["ernest_extrap"]
        ctx = f"{r['contexts']}/{r['all_contexts']}"
        print(f"{alg:<10}{ctx:>9}{r['folds']:>6}{nz:>8.2%}{r.get('bellamy_interp', np.nan):>13.2%}"
              f"{r.get('ernest_interp', np.nan):>12.2%}{r['bellamy_extrap']:>13.2%}{r['ernest_extrap']:>12.2%}"
              f"{b_all:>13.2%}{e_all:>12.2%}{'yes' if wins else 'no':>5}{b_all / nz:>9.2f}")
    print(f"\n'all' = mean of the interpolation and extrapolation MREs; B<E: Bellamy below Ernest on both; "
          f"B/noise: Bellamy 'all' MRE over the noise (goal <= 2). {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
