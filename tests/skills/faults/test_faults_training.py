"""Training Arvalus / D-Arvalus: the loss, a few epochs, learning something real, save and load."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.scoring import score
from intentos.skills.faults.simulator import CLASSES, Simulator, simulate, webshop
from intentos.skills.faults.training import (
    TrainConfig,
    class_weights,
    decide,
    focal_loss,
    graph,
    labels_for,
    load,
    predict,
    to_bytes,
    train,
)

torch.set_num_threads(1)
W = 32


def graphs_of(incidents: int, seed: int, scenarios: tuple[str, ...] = ("local",)) -> list:
    sim = simulate(incidents=incidents, seed=seed, window=W, scenarios=scenarios, normal_share=0.1)
    return [graph(sim.topology, v, labels_for(sim.topology, i)) for v, i in zip(sim.values, sim.incidents,
                                                                               strict=True)]


def test_focal_loss_is_weighted_cross_entropy_at_gamma_zero() -> None:
    logits = torch.randn(12, 5)
    target = torch.tensor([0] * 9 + [1, 3, 4])
    weight = class_weights(target, 5)
    assert weight[1] > weight[0] and weight.mean() == pytest.approx(1)
    ce = torch.nn.functional.cross_entropy(logits, target, weight=weight)
    assert focal_loss(logits, target, weight, 0.0) == pytest.approx(float(ce), rel=1e-5)
    assert focal_loss(logits, target, weight, 2.0) < focal_loss(logits, target, weight, 0.0)


def test_decide_calls_a_node_an_origin_when_its_anomaly_probability_is_over_half() -> None:
    probs = np.array([[0.3, 0.2, 0.2, 0.1, 0.2], [0.6, 0.1, 0.3, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0, 0.9]])
    assert decide(probs).tolist() == [1, 0, 4]


def test_labels_mark_only_the_origin() -> None:
    sim = simulate(incidents=10, seed=2, window=W, scenarios=("downstream",), normal_share=0)
    for inc in sim.incidents:
        y = labels_for(sim.topology, inc)
        assert (y > 0).sum() == 1 and y[sim.topology.names.index(next(iter(inc.origins)))] == CLASSES.index(inc.kind)


@pytest.mark.parametrize("model", ["arvalus", "d-arvalus"])
def test_a_few_epochs_then_save_and_load(model: str, tmp_path: Path) -> None:
    graphs = graphs_of(24, seed=1, scenarios=("local", "colocated"))
    trained = train(graphs, TrainConfig(model=model, epochs=2, hidden=16, heads=2), window=W)
    h = trained.header
    assert (h.epochs_run, h.window, h.classes, h.trained_incidents) == (2, W, list(CLASSES), 24)
    assert np.isfinite(h.train_loss) and h.validation_loss is not None and 1 <= h.best_epoch <= 2
    path = tmp_path / "model.pt"
    path.write_bytes(to_bytes(trained))
    again = load(path)
    assert again.header == h
    before, after = predict(trained, graphs[:3]), predict(again, graphs[:3])
    for a, b in zip(before, after, strict=True):
        assert a.shape == (len(webshop().components), len(CLASSES))
        np.testing.assert_allclose(a, b, atol=1e-6)
        np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)


def test_training_learns_to_find_the_origin() -> None:
    """Not a benchmark: a small model on local incidents must beat chance (1/19) by far on new ones."""
    trained = train(graphs_of(120, seed=3), TrainConfig(model="d-arvalus", epochs=15, lr=5e-3, heads=2), window=W)
    sim = Simulator(webshop(), seed=4, window=W)
    held = [sim.incident(i, "local") for i in range(15)]
    probs = predict(trained, [graph(sim.topo, v) for v, _ in held])
    labels = [labels_for(sim.topo, inc) for _, inc in held]
    s = score(labels, [decide(p) for p in probs], [1 - p[:, 0] for p in probs])
    assert s.pr_at[3] >= 0.7 and s.map >= 0.6, s


def test_load_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(FaultsInputError, match="notes.pt: not a model file"):
        load(text)

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"header": "{}", "state_dict": {}, "x": Evil()}, evil)
    with pytest.raises(FaultsInputError, match="not a model file"):
        load(evil)  # weights_only=True: no arbitrary objects are unpickled
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(FaultsInputError, match="not a model file"):
        load(plain)
    wrong = tmp_path / "wrong.pt"
    torch.save({"header": '{"format": "x"}', "state_dict": {}}, wrong)
    with pytest.raises(FaultsInputError, match="header"):
        load(wrong)
    with pytest.raises(FaultsInputError, match="no such model file"):
        load(tmp_path / "missing.pt")
