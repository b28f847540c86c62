"""The order in which PyTorch's CPU `torch.topk` returns tied scores, reproduced in Python.

`torch.topk(x, k, largest=True, sorted=True)` on CPU (ATen `topk_impl_loop`, SortingKernel.cpp)
fills a vector of (value, index) pairs and, with comp(a, b) = a.value > b.value,

- if k * 64 <= n: `std::partial_sort(q, q + k, q + n, comp)`;
- else: `std::nth_element(q, q + k - 1, q + n, comp)` then `std::sort(q, q + k - 1, comp)`.

The indices of the first k pairs are the result. Neither algorithm is stable, so among equal
values the order is whatever libstdc++'s heap select / introselect / introsort leave (PyTorch's
documentation does not define it). This module is a line-by-line port of those libstdc++
routines (bits/stl_algo.h, bits/stl_heap.h: __heap_select, __sort_heap, __introselect,
__introsort_loop, __unguarded_partition_pivot, __insertion_sort, ...), so it returns the same
indices as the PyTorch 2.x CPU wheels (built with GCC) on tie-heavy inputs; the tests check it
against `torch.topk` itself. It is plain Python: use it only on the rows where ties decide the
outcome (`topk_contains`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_THRESHOLD = 16  # libstdc++ _S_threshold


def _lg(n: int) -> int:
    return n.bit_length() - 1


class _Seq:
    """(value, index) pairs with libstdc++'s comparator for largest=True: a.value > b.value."""

    def __init__(self, values: list[float]):
        self.v = list(values)
        self.i = list(range(len(values)))

    def comp(self, a: int, b: int) -> bool:
        return self.v[a] > self.v[b]

    def swap(self, a: int, b: int) -> None:
        self.v[a], self.v[b] = self.v[b], self.v[a]
        self.i[a], self.i[b] = self.i[b], self.i[a]

    def get(self, a: int) -> tuple[float, int]:
        return self.v[a], self.i[a]

    def put(self, a: int, item: tuple[float, int]) -> None:
        self.v[a], self.i[a] = item


def _push_heap(s: _Seq, first: int, hole: int, top: int, value: tuple[float, int]) -> None:
    parent = (hole - 1) // 2
    while hole > top and s.v[first + parent] > value[0]:
        s.put(first + hole, s.get(first + parent))
        hole = parent
        parent = (hole - 1) // 2
    s.put(first + hole, value)


def _adjust_heap(s: _Seq, first: int, hole: int, length: int, value: tuple[float, int]) -> None:
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if s.comp(first + second, first + second - 1):
            second -= 1
        s.put(first + hole, s.get(first + second))
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        s.put(first + hole, s.get(first + second - 1))
        hole = second - 1
    _push_heap(s, first, hole, top, value)


def _make_heap(s: _Seq, first: int, last: int) -> None:
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(s, first, parent, length, s.get(first + parent))
        if parent == 0:
            return
        parent -= 1


def _pop_heap(s: _Seq, first: int, last: int, result: int) -> None:
    value = s.get(result)
    s.put(result, s.get(first))
    _adjust_heap(s, first, 0, last - first, value)


def _heap_select(s: _Seq, first: int, middle: int, last: int) -> None:
    _make_heap(s, first, middle)
    for i in range(middle, last):
        if s.comp(i, first):
            _pop_heap(s, first, middle, i)


def _sort_heap(s: _Seq, first: int, last: int) -> None:
    while last - first > 1:
        last -= 1
        _pop_heap(s, first, last, last)


def _partial_sort(s: _Seq, first: int, middle: int, last: int) -> None:
    _heap_select(s, first, middle, last)
    _sort_heap(s, first, middle)


def _unguarded_linear_insert(s: _Seq, last: int) -> None:
    val = s.get(last)
    nxt = last - 1
    while val[0] > s.v[nxt]:
        s.put(last, s.get(nxt))
        last = nxt
        nxt -= 1
    s.put(last, val)


def _insertion_sort(s: _Seq, first: int, last: int) -> None:
    if first == last:
        return
    for i in range(first + 1, last):
        if s.comp(i, first):
            val = s.get(i)
            for j in range(i, first, -1):  # move_backward(first, i, i + 1)
                s.put(j, s.get(j - 1))
            s.put(first, val)
        else:
            _unguarded_linear_insert(s, i)


def _final_insertion_sort(s: _Seq, first: int, last: int) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(s, first, first + _THRESHOLD)
        for i in range(first + _THRESHOLD, last):
            _unguarded_linear_insert(s, i)
    else:
        _insertion_sort(s, first, last)


def _move_median_to_first(s: _Seq, result: int, a: int, b: int, c: int) -> None:
    if s.comp(a, b):
        if s.comp(b, c):
            s.swap(result, b)
        elif s.comp(a, c):
            s.swap(result, c)
        else:
            s.swap(result, a)
    elif s.comp(a, c):
        s.swap(result, a)
    elif s.comp(b, c):
        s.swap(result, c)
    else:
        s.swap(result, b)


def _unguarded_partition(s: _Seq, first: int, last: int, pivot: int) -> int:
    while True:
        while s.comp(first, pivot):
            first += 1
        last -= 1
        while s.comp(pivot, last):
            last -= 1
        if not first < last:
            return first
        s.swap(first, last)
        first += 1


def _unguarded_partition_pivot(s: _Seq, first: int, last: int) -> int:
    mid = first + (last - first) // 2
    _move_median_to_first(s, first, first + 1, mid, last - 1)
    return _unguarded_partition(s, first + 1, last, first)


def _introsort_loop(s: _Seq, first: int, last: int, depth: int) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            _partial_sort(s, first, last, last)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(s, first, last)
        _introsort_loop(s, cut, last, depth)
        last = cut


def _sort(s: _Seq, first: int, last: int) -> None:
    if first != last:
        _introsort_loop(s, first, last, _lg(last - first) * 2)
        _final_insertion_sort(s, first, last)


def _nth_element(s: _Seq, first: int, nth: int, last: int) -> None:
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(s, first, nth + 1, last)
            s.swap(first, nth)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(s, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(s, first, last)


def topk_indices(row: Any, k: int) -> list[int]:
    """Indices `torch.topk(row, k, largest=True, sorted=True)[1]` returns on CPU (finite row).

    Args:
      row: (n,) finite scores (compared as given; pass float32 values to rank as float32).
      k: 1 <= k <= n.

    Returns:
      k indices, best first, ties ordered as PyTorch's CPU kernel orders them.
    """
    values = np.asarray(row)
    if values.ndim != 1:
        raise ValueError(f"row must be 1-D; got shape {values.shape}")
    n = values.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}]; got {k}")
    if not np.all(np.isfinite(values)):
        raise ValueError("row contains NaN or infinity; the tie order is only ported for finite")
    s = _Seq(values.tolist())
    if k * 64 <= n:
        _partial_sort(s, 0, k, n)
    else:
        _nth_element(s, 0, k - 1, n)
        _sort(s, 0, k - 1)
    return s.i[:k]


def topk_contains(scores: Any, positives: Any, k: int, within: int | None = None) -> np.ndarray:
    """For each row i: is a positive among the first `within` indices of `torch.topk(scores[i],
    k)` (CPU, sorted)? `within` defaults to k (anywhere in the top k).

    `sorted=True` puts the `within` largest values first, so only their tie order is open.
    Decided by counting where the answer does not depend on tie order: with v = the within-th
    largest value of the row, a positive scoring above v is surely in; one scoring v is surely in
    when every value equal to v fits (#{> v} + #{== v} <= within); one below v is out. Only rows
    left open (a positive at v and more values equal to v than places) are run through
    `topk_indices`.

    Args:
      scores: (R, n) finite scores.
      positives: (R, n) bool, the indices that count as hits.
      k: 1 <= k <= n, the k passed to torch.topk (it decides the algorithm, so the tie order).
      within: 1 <= within <= k.

    Returns:
      (R,) bool.
    """
    s = np.asarray(scores)
    pos = np.asarray(positives, dtype=bool)
    if s.ndim != 2 or pos.shape != s.shape:
        raise ValueError(f"scores and positives must be equal (R, n); got {s.shape}, {pos.shape}")
    r, n = s.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}]; got {k}")
    m = k if within is None else int(within)
    if not 1 <= m <= k:
        raise ValueError(f"within must lie in [1, {k}]; got {within}")
    if r == 0:
        return np.zeros(0, bool)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity; the tie order is only ported for finite")
    vm = -np.partition(-s, m - 1, axis=1)[:, m - 1 : m]  # the m-th largest value per row
    above = (s > vm).sum(axis=1)
    at_v = pos & (s == vm)
    fits = above + (s == vm).sum(axis=1) <= m
    hit = (pos & (s > vm)).any(axis=1) | (at_v.any(axis=1) & fits)
    for i in np.flatnonzero(~hit & at_v.any(axis=1) & ~fits):
        hit[i] = bool(pos[i, topk_indices(s[i], k)[:m]].any())
    return hit
