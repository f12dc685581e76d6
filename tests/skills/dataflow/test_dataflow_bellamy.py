"""Bellamy: property encoding, pre-training on all contexts, fine-tuning on 3 scale-outs, save/load."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from intentos.skills.dataflow.bellamy import Bellamy, BellamyConfig, ModelFileError
from intentos.skills.dataflow.encoding import DIM, binary_code, encode_value, hash_text
from intentos.skills.dataflow.ernest import Ernest
from intentos.skills.dataflow.history import History, load_history
from intentos.skills.dataflow.ops import QUICK_BELLAMY

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
torch.set_num_threads(1)


def test_whole_numbers_get_binary_codes_and_text_gets_hashed() -> None:
    assert binary_code(5)[-3:].tolist() == [1, 0, 1] and binary_code(5)[:-3].sum() == 0
    size = encode_value("15150")
    assert size.shape == (DIM,) and size[0] == 1 and set(size[1:].tolist()) <= {0.0, 1.0}
    machine = encode_value("m4.2xlarge")
    assert machine[0] == 0 and np.isclose(np.linalg.norm(machine[1:]), 1)
    # A fraction is text, so 0.001 and 0.0001 stay apart (their integer parts would both be 0).
    assert not np.allclose(encode_value("0.001"), encode_value("0.0001"))
    near = float(hash_text("r4.xlarge") @ hash_text("r4.2xlarge"))
    far = float(hash_text("r4.xlarge") @ hash_text("c4.2xlarge"))
    assert near > far


@pytest.fixture(scope="module")
def sgd() -> History:
    return load_history(DATA / "c3o" / "sgd.tsv")


@pytest.fixture(scope="module")
def pretrained(sgd: History) -> tuple[Bellamy, tuple[str, ...]]:
    """Pre-trained leave-one-context-out: the target context's runs are not in it."""
    target = sorted(sgd.contexts())[2]
    others = [r for r in sgd.runs if r.context_key() != target]
    cfg = BellamyConfig(**QUICK_BELLAMY)
    return Bellamy.pretrain(others, algorithm="sgd", param_names=sgd.param_names, config=cfg), target


def test_finetuned_bellamy_predicts_an_unseen_context_from_three_scaleouts(
        sgd: History, pretrained: tuple[Bellamy, tuple[str, ...]]) -> None:
    model, target = pretrained
    runs = sgd.contexts()[target]
    means = {m: np.mean([r.runtime_s for r in runs if r.scaleout == m]) for m in sgd.scaleouts()}
    given = (2, 6, 12)
    tuned = model.finetune([r for r in runs if r.scaleout in given])
    assert tuned.header.finetuned_on == list(target) and model.header.finetuned_on is None
    rest = [m for m in means if m not in given]
    pred = tuned.predict(runs[0], rest)
    mre = np.mean([abs(p - means[m]) / means[m] for p, m in zip(pred, rest, strict=True)])
    assert mre < 0.10, (pred, [means[m] for m in rest])
    # Fine-tuning helps over the general model on this context.
    general = model.predict(runs[0], rest)
    assert mre < np.mean([abs(p - means[m]) / means[m] for p, m in zip(general, rest, strict=True)])
    # Runtime falls as machines are added on this job, and predictions are finite and positive.
    assert np.all(np.diff(tuned.predict(runs[0], [2, 4, 8, 12])) < 0)
    ernest = Ernest.fit([r.scaleout for r in runs if r.scaleout in given],
                        [r.runtime_s for r in runs if r.scaleout in given])
    assert np.all(np.isfinite(ernest.predict(rest)))


def test_a_saved_model_loads_and_predicts_the_same(tmp_path: Path, sgd: History,
                                                    pretrained: tuple[Bellamy, tuple[str, ...]]) -> None:
    model, target = pretrained
    context = sgd.contexts()[target][0]
    path = model.save(tmp_path / "m" / "sgd.pt")
    loaded = Bellamy.load(path)
    assert loaded.header == model.header
    assert np.allclose(loaded.predict(context, [3, 7, 11]), model.predict(context, [3, 7, 11]))
    blob = torch.load(path, weights_only=True)  # only a JSON string and tensors inside
    assert isinstance(blob["header"], str) and all(isinstance(v, torch.Tensor) for v in blob["state"].values())


def test_bad_model_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pt: not a model file"):
        Bellamy.load(tmp_path / "junk.pt")
    # An arbitrary pickled object is refused by weights_only loading, never executed.
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Path("/")))
    with pytest.raises(ModelFileError, match="evil.pt"):
        Bellamy.load(tmp_path / "evil.pt")
    torch.save({"header": '{"kind": "bellamy"}', "state": {}}, tmp_path / "half.pt")
    with pytest.raises(ModelFileError, match="bad model header"):
        Bellamy.load(tmp_path / "half.pt")
    with pytest.raises(ModelFileError, match="no such model file"):
        Bellamy.load(tmp_path / "missing.pt")
