"""Algorithmic tasks: operation values, S5, tokens, splits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from groklab.config import ConfigError, AlgorithmicConfig
from groklab.tasks import OPS, make_task, split_indices, table

PERMS = list(itertools.permutations(range(5)))  # the documented index order of S5


def idx_of(perm) -> int:
    return PERMS.index(tuple(perm))


def value(task, a: int, b: int) -> int:
    hit = torch.nonzero((task.a == a) & (task.b == b)).flatten()
    assert len(hit) == 1, (a, b, hit)
    return int(task.c[hit[0]])


# --------------------------------------------------------------------------- Z_p operations

# Hand-computed, p = 11. 5^-1 = 9 (45 = 4*11 + 1), 2^-1 = 6 (12 = 11 + 1).
HAND = {
    "add": {(3, 5): 8, (7, 2): 9, (10, 10): 9},
    "sub": {(3, 5): 9, (7, 2): 5, (0, 1): 10},
    "mul": {(3, 5): 4, (7, 2): 3, (10, 10): 1},
    "mul_nz": {(3, 5): 4, (0, 2): 0, (10, 10): 1},
    "div": {(3, 5): 5, (7, 2): 9, (1, 10): 10},  # 10^-1 = 10 (100 = 9*11 + 1)
    "div_odd": {(3, 5): 5, (7, 2): 5, (3, 4): 10, (6, 0): 6},  # b even: a - b
    "sq_add": {(3, 5): 1, (7, 2): 9},  # 34, 53
    "quad": {(3, 5): 5, (7, 2): 1},  # 49, 67
    "quad_x": {(3, 5): 8, (7, 2): 8},  # 52, 74
    "cube_xy": {(3, 5): 9, (7, 2): 5},  # 42, 357
    "cube_xy2": {(3, 5): 8, (7, 2): 10},  # 107, 373
}


@pytest.mark.parametrize("op", sorted(HAND))
def test_zp_ops_hand_values(op):
    task = make_task(AlgorithmicConfig(op=op, p=11))
    for (a, b), c in HAND[op].items():
        assert value(task, a, b) == c, (op, a, b)
    assert int(task.c.min()) >= 0 and int(task.c.max()) <= 10
    assert task.n_symbols == 11 and task.n_classes == 11


def test_add_int_has_no_modulus():
    task = make_task(AlgorithmicConfig(op="add_int", p=10))
    assert value(task, 3, 5) == 8
    assert value(task, 9, 9) == 18
    assert value(task, 7, 6) == 13
    assert task.n_classes == 19 and task.n_symbols == 10
    assert int(task.c.max()) == 18


def test_mul_nz_has_no_zero_second_operand():
    task = make_task(AlgorithmicConfig(op="mul_nz", p=11))
    assert len(task.c) == 11 * 10 and int(task.b.min()) == 1  # Grokfast's table: y in 1..p-1


def test_hand_values_cover_every_op():
    covered = set(HAND) | {"add_int", "s5_mul", "s5_conj", "s5_xyx"}
    assert covered == set(OPS)


def test_div_table_excludes_zero_and_inverts_mul():
    p = 13
    a, b, c = table("div", p)
    assert len(a) == p * (p - 1)
    assert (b != 0).all()
    assert ((c * b) % p == a).all()
    task = make_task(AlgorithmicConfig(op="div", p=p))
    assert len(task.tokens) == p * (p - 1)
    # row order stays lexicographic: (0,1), (0,2), ..., (0,12), (1,1)
    assert task.a[:13].tolist() == [0] * 12 + [1]
    assert task.b[:13].tolist() == list(range(1, 13)) + [1]


def test_div_odd_keeps_b_zero():
    a, b, c = table("div_odd", 7)
    assert len(a) == 49
    assert (c[b == 0] == a[b == 0]).all()


def test_table_is_lexicographic():
    a, b, c = table("sub", 5)
    assert a.tolist() == [i for i in range(5) for _ in range(5)]
    assert b.tolist() == list(range(5)) * 5
    assert c.tolist() == [(i - j) % 5 for i in range(5) for j in range(5)]


# --------------------------------------------------------------------------- S5

# x = (0 1), y = (1 2) written as lists x[i]; composition (x∘y)(i) = x[y[i]]
X01 = (1, 0, 2, 3, 4)
Y12 = (0, 2, 1, 3, 4)
C3 = (1, 2, 0, 3, 4)  # 0->1->2->0
C3_INV = (2, 0, 1, 3, 4)


@pytest.fixture(scope="module")
def s5():
    out = {}
    for op in ("s5_mul", "s5_conj", "s5_xyx"):
        a, b, c = table(op, 120)
        assert len(a) == 120 * 120
        assert (a == np.repeat(np.arange(120), 120)).all()
        out[op] = c.reshape(120, 120)  # out[op][x, y]
    return out


def test_s5_index_order():
    assert idx_of((0, 1, 2, 3, 4)) == 0
    assert idx_of((0, 1, 2, 4, 3)) == 1
    assert idx_of((1, 0, 2, 3, 4)) == 24
    assert idx_of((4, 3, 2, 1, 0)) == 119


def test_s5_mul_convention(s5):
    m = s5["s5_mul"]
    # x∘y = [x[y[0]], ...] = (1,2,0,3,4); y∘x = (2,0,1,3,4): the order matters
    assert m[idx_of(X01), idx_of(Y12)] == idx_of((1, 2, 0, 3, 4))
    assert m[idx_of(Y12), idx_of(X01)] == idx_of((2, 0, 1, 3, 4))
    assert m[idx_of(C3), idx_of(C3)] == idx_of(C3_INV)
    assert m[idx_of(C3), idx_of(C3_INV)] == 0


def test_s5_conj_and_xyx(s5):
    # c∘y∘c^-1 with y = (0 1): (c(0) c(1)) = (1 2)
    assert s5["s5_conj"][idx_of(C3), idx_of(X01)] == idx_of((0, 2, 1, 3, 4))
    # c∘y∘c = [ (c∘y)[c[i]] ], c∘y = (2,1,0,3,4)  ->  (1,0,2,3,4)
    assert s5["s5_xyx"][idx_of(C3), idx_of(X01)] == idx_of((1, 0, 2, 3, 4))
    # (0 1) conjugating (1 2) gives (0 2)
    assert s5["s5_conj"][idx_of(X01), idx_of(Y12)] == idx_of((2, 1, 0, 3, 4))
    assert s5["s5_xyx"][idx_of(X01), idx_of(Y12)] == idx_of((2, 1, 0, 3, 4))


def test_s5_matches_explicit_composition_on_samples(s5):
    rng = np.random.default_rng(0)
    for _ in range(40):
        xi, yi = (int(v) for v in rng.integers(0, 120, 2))
        x, y = PERMS[xi], PERMS[yi]
        xy = tuple(x[y[i]] for i in range(5))
        x_inv = tuple(sorted(range(5), key=lambda i: x[i]))
        assert all(x[x_inv[i]] == i for i in range(5))
        assert s5["s5_mul"][xi, yi] == idx_of(xy)
        assert s5["s5_conj"][xi, yi] == idx_of(tuple(xy[x_inv[i]] for i in range(5)))
        assert s5["s5_xyx"][xi, yi] == idx_of(tuple(xy[x[i]] for i in range(5)))


def test_s5_group_laws(s5):
    m, conj, xyx = s5["s5_mul"], s5["s5_conj"], s5["s5_xyx"]
    r = np.arange(120)
    assert (m[0] == r).all() and (m[:, 0] == r).all()  # identity
    for row in m:  # Latin square: every row and column a permutation
        assert sorted(row.tolist()) == list(range(120))
    assert all(sorted(m[:, j].tolist()) == list(range(120)) for j in range(120))
    # associativity on the whole group
    left = m[m[:, :, None], r[None, None, :]]  # (x∘y)∘z
    right = m[r[:, None, None], m[None, :, :]]  # x∘(y∘z)
    assert (left == right).all()
    assert (m != m.T).any()  # not commutative
    assert (conj[:, 0] == 0).all()  # x e x^-1 = e
    assert (conj[0] == r).all()
    assert (xyx[0] == r).all() and (xyx[:, 0] == m[r, r]).all()


def test_s5_task_vocabulary():
    task = make_task(AlgorithmicConfig(op="s5_mul", p=120, layout="aopb="))
    assert task.n_symbols == 120 and task.n_classes == 120 and task.vocab_size == 122
    assert (task.tokens[:, 1] == 120).all() and (task.tokens[:, 3] == 121).all()


# --------------------------------------------------------------------------- tokens


def test_tokens_layout_ab():
    task = make_task(AlgorithmicConfig(op="add", p=7, layout="ab="))
    assert task.tokens.shape == (49, 3) and task.tokens.dtype == torch.int64
    assert task.tokens[10].tolist() == [1, 3, 8]  # row 10 = (1, 3); '=' = 7 + 1
    assert torch.equal(task.tokens[:, 0], task.a) and torch.equal(task.tokens[:, 1], task.b)
    assert (task.tokens[:, 2] == 8).all()
    assert (task.vocab_size, task.seq_len, task.b_pos) == (9, 3, 1)
    assert int(task.c[10]) == 4


def test_tokens_layout_aopb():
    task = make_task(AlgorithmicConfig(op="add", p=7, layout="aopb="))
    assert task.tokens.shape == (49, 4)
    assert task.tokens[10].tolist() == [1, 7, 3, 8]  # op = 7, '=' = 8
    assert torch.equal(task.tokens[:, task.b_pos], task.b)
    assert (task.vocab_size, task.seq_len, task.b_pos) == (9, 4, 2)


# --------------------------------------------------------------------------- splits


def test_random_split_depends_on_split_seed_alone():
    torch.manual_seed(123)
    tr1, va1 = split_indices(121, 0.3, "random", 5)
    torch.manual_seed(999)
    tr2, va2 = split_indices(121, 0.3, "random", 5)
    assert torch.equal(tr1, tr2) and torch.equal(va1, va2)
    tr3, _ = split_indices(121, 0.3, "random", 6)
    assert not torch.equal(tr1, tr3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    split_indices(121, 0.3, "random", 5)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is not touched


def test_task_split_same_for_same_split_seed():
    cfg = AlgorithmicConfig(op="add", p=11, fraction=0.4, split_seed=3)
    torch.manual_seed(0)
    t1 = make_task(cfg)
    torch.manual_seed(1)
    t2 = make_task(cfg)
    assert torch.equal(t1.train_idx, t2.train_idx)
    t3 = make_task(AlgorithmicConfig(op="add", p=11, fraction=0.4, split_seed=4))
    assert not torch.equal(t1.train_idx, t3.train_idx)


@pytest.mark.parametrize("n,fraction,expected", [(121, 0.3, 36), (49, 0.5, 24), (100, 0.25, 25),
                                                  (9409, 0.5, 4704)])
@pytest.mark.parametrize("kind", ["random", "prefix"])
def test_split_is_partition_of_given_size(n, fraction, expected, kind):
    tr, va = split_indices(n, fraction, kind, 0)
    assert len(tr) == expected == int(n * fraction)
    assert len(va) == n - expected
    both = torch.cat([tr, va]).sort().values
    assert torch.equal(both, torch.arange(n))
    assert torch.equal(tr, tr.sort().values) and torch.equal(va, va.sort().values)


def test_random_split_is_not_a_prefix():
    tr, _ = split_indices(121, 0.3, "random", 0)
    assert not torch.equal(tr, torch.arange(36))


def test_split_unknown_kind():
    with pytest.raises(ConfigError):
        split_indices(10, 0.5, "stripes", 0)


def test_prefix_split_equals_challenge_generator():
    data = []
    for i in range(97):
        for j in range(97):
            data.append((i, j, (i + j) % 97))
    train = data[: int(len(data) * 0.5)]
    val = data[int(len(data) * 0.5):]
    task = make_task(AlgorithmicConfig(op="add", p=97, fraction=0.5, split="prefix"))
    rows = list(zip(task.a.tolist(), task.b.tolist(), task.c.tolist()))
    assert [rows[i] for i in task.train_idx.tolist()] == train
    assert [rows[i] for i in task.val_idx.tolist()] == val


@pytest.mark.parametrize("op", ["add", "mul", "sq_add", "quad", "add_int"])
def test_dedupe_commutative_keeps_a_le_b(op):
    p = 11
    task = make_task(AlgorithmicConfig(op=op, p=p, dedupe_commutative=True, fraction=0.5))
    pairs = list(zip(task.a.tolist(), task.b.tolist()))
    assert len(pairs) == p * (p + 1) // 2 == 66
    assert set(pairs) == {(a, b) for a in range(p) for b in range(p) if a <= b}
    assert len(task.train_idx) == 33


def test_liu_toy_task_size():
    task = make_task(AlgorithmicConfig(op="add_int", p=10, fraction=0.6, dedupe_commutative=True))
    assert len(task.tokens) == 55 and len(task.train_idx) == 33 and len(task.val_idx) == 22
