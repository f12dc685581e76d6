"""Fault localization skill: Arvalus and D-Arvalus (Scheinert et al., arXiv:2103.05245) on the dependency
graph of a distributed application.

A topology (components, their hosts, their service dependencies) becomes a graph with typed edges; a
window of metric time series per component becomes node features; a graph neural network classifies
every node as normal or one kind of anomaly and ranks the components by how likely each is an origin.

Modules, one concept each: topology (YAML, typed edges), metrics (CSV/Prometheus readers, windows),
simulator (a web shop with injected, propagating anomalies), models (Arvalus, D-Arvalus), baseline
(per-component isolation forest), training (dataset, loss, loop, save/load), scoring (macro-F1, PR@k,
MAP), ops (the results and the work: simulate, train, localize), app (the `faults` agent app) and cli.
torch is imported only by models/training, so loading the Function Table stays fast.
"""
