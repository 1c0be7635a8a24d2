"""Every member of a transformer ensemble is bit for bit its single run (issue 15, item 6):
trained as one batched model or alone, member e ends with the same weights and the same
metrics (wall-clock aside), with and without layer norm, full batch and on minibatches."""

import pytest
import torch

import groklab
from groklab.store import RunStore

SMALL = ["task.p=23", "model.d_model=32", "model.n_heads=4", "model.d_mlp=64", "train.steps=30",
         "train.stop_val_acc=none", "train.progress=false"]


@pytest.mark.parametrize("preset, extra", [
    ("nanda2023", ["task.p=113"]),  # no layer norm, the fast path (p = 113: C = 113 took gemv at E = 1)
    ("power2022", ["train.batch_size=null"]),  # pre-LN, 2 layers, full batch
    ("power2022", ["train.batch_size=16"]),  # minibatches: each member its own batches
    ("fastest", ["train.batch_size=16"]),  # the learned-embedding MLP on minibatches
], ids=["nanda2023", "power2022-layernorm", "power2022-minibatch", "mlp-minibatch"])
def test_each_member_equals_its_single_run_bit_for_bit(tmp_path, preset, extra):
    seeds = [0, 1]
    ens = groklab.train(groklab.resolve(preset, overrides=[*SMALL, *extra, f"train.seeds={seeds}"]),
                        tmp_path / "ens", progress=False)
    we = RunStore(ens.path).load_weights()[1]
    me = ens.metrics[ens.metrics.name != "time_s"]
    for e, s in enumerate(seeds):
        one = groklab.train(groklab.resolve(preset, overrides=[*SMALL, *extra, f"train.seeds=[{s}]"]),
                            tmp_path / f"s{s}", progress=False)
        w1 = RunStore(one.path).load_weights()[1]
        diff = {k: (we[k][e] - w1[k][0]).abs().max().item() for k in w1 if not torch.equal(we[k][e], w1[k][0])}
        assert not diff, f"member {e} differs from its single run: {diff}"
        m1 = one.metrics[one.metrics.name != "time_s"].set_index(["step", "name"])["value"]
        mm = me[me.member == e].set_index(["step", "name"])["value"]
        assert mm.sort_index().equals(m1.sort_index()), f"member {e}'s metrics differ from its single run's"
