"""row_attention: the Numba kernel equals the eager implementation (values and gradients),
for shared and per-member rows, masks, one table or two; it runs in a forked child and
from two threads at once; other dtypes take the eager path."""

from __future__ import annotations

import pytest
import torch

from groklab.models import row_attention as ra

H, D = 2, 6  # heads, width (dh = 3)


def case(E: int, per_member: bool | str, same_table: bool, masked: bool, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    Rq, Rk, N, Tq, Tk = 7, 9, 5, 2, 4
    kv = torch.randn(E, Rk, 3 * D, generator=g, dtype=dtype).requires_grad_()
    q = kv if same_table else torch.randn(E, Rq, D + 2, generator=g, dtype=dtype).requires_grad_()
    lead = (E, N) if per_member else (N,)
    q_rows = torch.randint(0, q.shape[1], (lead if per_member is True else (N,)) + (Tq,), generator=g)
    k_rows = torch.randint(0, Rk, lead + (Tk,), generator=g)
    allowed = None
    if masked:  # queries at positions 2 and 3 of a causal sequence, per sequence for one
        allowed = torch.arange(Tk) <= torch.tensor([2, 3])[:, None]
        allowed = allowed.expand(N, Tq, Tk).clone()
        allowed[0, 0, 1] = False
    cols = (D, 1, D, 2 * D) if not same_table else (D, 0, D, 2 * D)  # q from column 1 of a wider table
    return q, kv, q_rows, k_rows, allowed, cols


def value_and_grads(fn, q, kv, q_rows, k_rows, allowed, cols):
    z = fn(q, kv, q_rows, k_rows, allowed, H, cols)
    w = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=z.dtype)
    inputs = [q] if q is kv else [q, kv]
    return z.detach(), torch.autograd.grad((z * w).sum(), inputs)


@pytest.mark.parametrize("masked", [False, True], ids=["all-keys", "masked"])
@pytest.mark.parametrize("same_table", [True, False], ids=["one-table", "two-tables"])
@pytest.mark.parametrize("per_member", [False, True, "keys"], ids=["shared-rows", "per-member-rows", "per-member-keys"])
@pytest.mark.parametrize("E", [1, 2])
def test_kernel_equals_eager_float64(E, per_member, same_table, masked):
    args = case(E, per_member, same_table, masked)
    assert ra._kernel_applies(args[0], args[1])
    zk, gk = value_and_grads(ra.row_attention, *args)
    ze, ge = value_and_grads(ra.row_attention_eager, *args)
    assert zk.shape == ze.shape == (E, 5, 2, D)
    assert torch.allclose(zk, ze, rtol=0, atol=1e-13)
    for a, b in zip(gk, ge):
        assert b.abs().sum() > 0
        assert torch.allclose(a, b, rtol=0, atol=1e-13)


def test_kernel_float32_matches_eager_and_keeps_the_dtype():
    args = case(2, True, True, True, dtype=torch.float32)
    zk, (gk,) = value_and_grads(ra.row_attention, *args)
    ze, (ge,) = value_and_grads(ra.row_attention_eager, *args)
    assert zk.dtype == gk.dtype == torch.float32
    assert torch.allclose(zk, ze, rtol=1e-5, atol=1e-6) and torch.allclose(gk, ge, rtol=1e-5, atol=1e-6)


def _attend(seed: int):
    args = case(2, False, False, True, dtype=torch.float32, seed=seed)
    z, grads = value_and_grads(ra.row_attention, *args)
    return [z, *grads]


def _child(queue) -> None:  # in a forked process
    queue.put([t.numpy() for t in _attend(3)])


def test_kernel_works_in_a_process_forked_after_it_ran():
    """Numba's OpenMP threading layer kills such a child (as a DataLoader's forked worker
    would be): the kernels must not use it."""
    import multiprocessing as mp

    parent = _attend(3)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert all(torch.equal(torch.from_numpy(a), b) for a, b in zip(got, parent))


def test_kernel_calls_from_two_threads_at_once():
    """Numba's work-queue layer aborts on concurrent calls: the kernels must not use it."""
    from concurrent.futures import ThreadPoolExecutor

    alone = [_attend(s) for s in range(4)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(_attend, range(4)))
    for a, b in zip(alone, together):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_a_second_derivative_through_the_kernel_is_refused():
    q, kv, q_rows, k_rows, allowed, cols = case(1, False, True, True)
    z = ra.row_attention(q, kv, q_rows, k_rows, allowed, H, cols)
    (g,) = torch.autograd.grad(z.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        g.sum().backward()


def test_other_dtypes_take_the_eager_path():
    q, kv, q_rows, k_rows, allowed, cols = case(1, False, True, False, dtype=torch.bfloat16)
    assert not ra._kernel_applies(q, kv)
    assert not ra._kernel_applies(q.detach().double(), kv.detach().float())
    z = ra.row_attention(q, kv, q_rows, k_rows, allowed, H, cols)
    assert z.dtype == torch.bfloat16
    assert torch.allclose(z.float(), ra.row_attention_eager(q.float(), kv.float(), q_rows, k_rows, allowed, H, cols), atol=0.05)
