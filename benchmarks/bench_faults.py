"""Benchmark of fault localization: the isolation-forest baseline, Arvalus and D-Arvalus on held-out
simulated incidents of each propagation scenario (intentos.skills.faults.simulator, the web shop).

Training: `--train` incidents of the web shop (seed 1), all scenarios mixed, a fifth without anomaly;
the baseline fits on the anomaly-free ones. Test: `--test` incidents per scenario from another run of
the same shop (seed 2, so other traffic, noise and intensities), plus as many anomaly-free ones for
the node-level scores. Reported per scenario: macro-F1 over node classes (normal + 4 kinds) and binary
(origin or not), PR@1..3 and MAP of the origin ranking. The graph models are trained with `--seeds`
seeds (initialisation and batch order) and their scores averaged; `sd` is the spread of their MAP.

    .venv/bin/python benchmarks/bench_faults.py              # default, about 6 minutes on 2 shared cores
    .venv/bin/python benchmarks/bench_faults.py --quick      # small, a minute or two
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from intentos.skills.faults.baseline import IsolationBaseline
from intentos.skills.faults.scoring import Scores, score
from intentos.skills.faults.simulator import SCENARIOS, Simulation, Simulator, simulate, webshop
from intentos.skills.faults.training import TrainConfig, decide, graph, labels_for, predict, train


def test_set(per_scenario: int, window: int, seed: int) -> dict[str, Simulation]:
    """Held-out incidents per scenario, each scenario with its own anomaly-free windows mixed in."""
    topo = webshop()
    sim = Simulator(topo, seed=seed, window=window)
    sets = {}
    for s in SCENARIOS:
        run = Simulation(topo, [])
        for _ in range(per_scenario):
            for scenario in (s, None):
                values, truth = sim.incident(len(run.values), scenario)
                run.values.append(values)
                run.incidents.append(truth)
        sets[s] = run
    return sets


def row(name: str, runs: list[Scores], seconds: float) -> str:
    """Mean scores over runs (training seeds); sd: the standard deviation of MAP across them."""
    m = lambda f: float(np.mean([f(s) for s in runs]))  # noqa: E731
    sd = float(np.std([s.map for s in runs])) if len(runs) > 1 else 0.0
    return (f"  {name:<12}{m(lambda s: s.macro_f1):>9.3f}{m(lambda s: s.binary_f1):>9.3f}"
            f"{m(lambda s: s.pr_at[1]):>8.3f}{m(lambda s: s.pr_at[2]):>8.3f}{m(lambda s: s.pr_at[3]):>8.3f}"
            f"{m(lambda s: s.map):>8.3f}{sd:>7.3f}{seconds:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=800, help="training incidents")
    ap.add_argument("--test", type=int, default=60, help="held-out anomalous incidents per scenario")
    ap.add_argument("--window", type=int, default=60, help="samples per window (2 Hz)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=2, help="training seeds per graph model, scores averaged")
    ap.add_argument("--quick", action="store_true", help="300 training incidents, 30 per scenario, 12 epochs, 1 seed")
    args = ap.parse_args()
    if args.quick:
        args.train, args.test, args.epochs, args.seeds = 300, 30, 12, 1
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    data = simulate(incidents=args.train, seed=1, window=args.window)
    topo = data.topology
    names = topo.names
    graphs = [graph(topo, v, labels_for(topo, inc)) for v, inc in zip(data.values, data.incidents, strict=True)]
    tests = test_set(args.test, args.window, seed=2)
    print(f"web shop: {len(names)} components on {len(topo.all_hosts())} hosts, {len(topo.dependencies)} "
          f"dependencies; {args.train} training incidents, {args.test} anomalous + {args.test} normal test "
          f"incidents per scenario, window {args.window} samples at 2 Hz "
          f"(simulated in {time.perf_counter() - started:.1f}s)")

    t = time.perf_counter()
    base = IsolationBaseline(seed=0).fit(names, [v for v, inc in zip(data.values, data.incidents, strict=True)
                                                 if not inc.origins])
    fit_seconds = {"baseline": time.perf_counter() - t}
    trained = {}
    for model in ("arvalus", "d-arvalus"):
        trained[model] = []
        for seed in range(args.seeds):
            t = time.perf_counter()
            cfg = TrainConfig(model=model, epochs=args.epochs, threads=args.threads, seed=seed)
            trained[model].append(train(graphs, cfg, window=args.window))
            fit_seconds[model] = time.perf_counter() - t  # per training run
            h = trained[model][-1].header
            print(f"{model} seed {seed}: {args.epochs} epochs in {fit_seconds[model]:.0f}s, best epoch "
                  f"{h.best_epoch}, validation loss {h.validation_loss}")

    print(f"\n  {'detector':<12}{'macroF1':>9}{'binF1':>9}{'PR@1':>8}{'PR@2':>8}{'PR@3':>8}{'MAP':>8}{'sd':>7}"
          f"{'fit s':>9}")
    for scenario, run in tests.items():
        labels = [labels_for(topo, inc) for inc in run.incidents]
        print(f"{scenario}:")
        pred = base.predict(names, run.values)
        print(row("baseline", [score(labels, [p for p, _ in pred], [s for _, s in pred])], fit_seconds["baseline"]))
        tg = [graph(topo, v) for v in run.values]
        for model, runs in trained.items():
            scores = []
            for tr in runs:
                probs = predict(tr, tg)
                scores.append(score(labels, [decide(p) for p in probs], [1 - p[:, 0] for p in probs]))
            print(row(model, scores, fit_seconds[model]))
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
