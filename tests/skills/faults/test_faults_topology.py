"""Topology YAML: the web shop round-trips, edges are typed, and malformed files name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentos.errors import IntentosError
from intentos.skills.faults.errors import FaultsInputError
from intentos.skills.faults.simulator import webshop
from intentos.skills.faults.topology import EDGE_TYPES, load_topology


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return path


def test_webshop_round_trips_through_yaml(tmp_path: Path) -> None:
    shop = webshop()
    assert len(shop.components) >= 12 and len(shop.all_hosts()) >= 5
    again = load_topology(write(tmp_path, shop.to_yaml()))
    assert again == shop
    assert again.callees("orders") == ["payment", "orders-db", "queue"]
    assert again.callers("catalog") == ["api-gateway", "cart", "recommendations"]
    assert set(again.colocated("catalog")) == {"auth", "catalog-cache", "worker-fulfillment"}


def test_edges_are_typed_and_directed() -> None:
    shop = webshop()
    index, kind = shop.edges()
    names = shop.names
    pairs = {(names[a], names[b], EDGE_TYPES[k]) for a, b, k in zip(index[0], index[1], kind, strict=True)}
    assert ("orders", "orders-db", "calls") in pairs and ("orders-db", "orders", "called_by") in pairs
    assert ("orders-db", "orders", "calls") not in pairs
    assert ("catalog", "auth", "colocated") in pairs and ("auth", "catalog", "colocated") in pairs
    colocated_pairs = sum(len(shop.colocated(n)) for n in names)
    assert len(kind) == 2 * len(shop.dependencies) + colocated_pairs


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("components:\n  - {name: a, host: h}\n  - name: b\n    host: h: x\n", 4, "malformed YAML"),
    ("components:\n  - {name: a, host: h}\ndependencies:\n  - {from: a, to: zz}\n", 4,
     "dependencies.0.to: unknown component 'zz'"),
    ("components:\n  - {name: a, host: h}\n  - {name: a, host: h2}\n", 3, "components.1.name: component 'a' is listed "
     "twice"),
    ("components:\n  - {name: a}\n", 2, "components.0.host: Field required"),
    ("components:\n  - {name: a, host: h, cpu: 3}\n", 2, "components.0.cpu: Extra inputs are not permitted"),
    ("hosts: [h1]\ncomponents:\n  - {name: a, host: h2}\n", 3, "components.0.host: host 'h2' is not in `hosts`"),
    ("components:\n  - {name: a, host: h}\ndependencies:\n  - {from: a, to: a}\n", 4, "'a' depends on itself"),
    ("- a\n- b\n", 1, "a topology is a mapping"),
])
def test_malformed_topologies_name_file_line_and_field(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FaultsInputError) as info:
        load_topology(path)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ") and needle in str(info.value)
    assert isinstance(info.value, IntentosError)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FaultsInputError, match="nope.yaml: no such file"):
        load_topology(tmp_path / "nope.yaml", "nope.yaml")
    with pytest.raises(FaultsInputError, match="the file is empty"):
        load_topology(write(tmp_path, ""))
