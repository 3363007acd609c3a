"""One-pass batch profiles: every metric of a batch from a single stream of Arrow chunks.

A batch arrives as a sequence of record batches (a Parquet file's row groups, a CSV read in
blocks); each chunk is reduced to small partial results which merge exactly where the
mathematics allows (counts, sums, extremes, moments through Chan's parallel update) and
through Apache DataSketches where it does not (distinct counts past a bound, quantiles past a
bound, frequent items past a bound). Memory is therefore bounded by the bounds, not by the
batch, and the cost is a handful of vectorised passes over each chunk.

Conventions a reader of the stored series should know:

- NaN in a float column is a missing value: it counts in ``nulls``, never in ``count``.
- ±inf is a present value: it counts in ``count``, in ``distinct``, in ``negatives`` (-inf)
  and in its own ``infinite`` metric, but ``min``, ``max``, ``mean``, ``std`` and the
  quantiles describe the finite values only. One stray infinity would otherwise turn a
  column's mean into inf (and its std into NaN) for good, making the series useless to the
  detectors; as a count of its own it is an alert like any other.
- A metric that is undefined for the batch (the mean of an all-null column, the std of one
  value, the null fraction of an empty batch) is left out rather than stored as NaN.
- Quantiles are exact, with linear interpolation between order statistics as pandas does by
  default, while the column's value -> count table is exact (at most
  ``exact_distinct_limit`` distinct values, whatever the row count) or its finite values
  number at most ``exact_quantile_limit``; past both they come from a KLL sketch
  (normalised rank error about 0.3%).
- ``distinct`` is exact while a column has at most ``exact_distinct_limit`` distinct values,
  then a k-minimum-values estimate (relative standard error 1/sqrt(k) = 0.3%; exact, for
  numbers, dates and times, whenever the column holds fewer than k = 131,072 distinct
  values). A column whose first values look near-unique is sketched from the start, and
  skips the table once the sketch proves more distinct values than the limit. Category
  frequencies switch at the same bound from exact counts to a frequent-items summary
  (Misra-Gries), which reports only the items it can prove frequent; everything else lands
  in ``freq_other``.
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import datasketches as ds
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES: dict[str, float] = {
    "p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95, "p99": 0.99,
}
# a numeric column's distribution as drift and its charts read it back: the extremes, the
# quantiles above and the count of present values, each stored as a metric of that name
QUANTILE_KEYS = ["min", *QUANTILES, "max", "count"]

# the k smallest 64-bit hashes a distinct-count sketch keeps: 1 MiB per column, relative
# standard error 1/sqrt(k) ~ 0.3%; above the default exact limit, so that the sketch alone
# can prove a chunk has more distinct values than the exact table may hold
DISTINCT_K = 1 << 17
# values of a chunk looked at to guess whether its column is near-unique (then the sketch is
# asked for that proof before any value -> count table is built)
SAMPLE = 2048
# normalised rank error ~0.28%, a few tens of KiB per column; bulk updates cost the same as k=200
KLL_K = 1000
# counters of the frequent-items summary: an item is reported only when its count is provably
# above rows / (FREQUENT_COUNTERS + 1), ~0.03% of the rows
FREQUENT_COUNTERS = 3072
# merging pending uniques into the exact set costs the size of both, so merge only once the
# pending part is as large as the set: the total merge work stays linear in the rows
MIN_MERGE = 1 << 16

if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    # pyarrow's wheels default to mimalloc, which on a busy two-core machine spent 0.6-1.5 s of
    # system time per 1M-row profile handing freed pages back to the kernel and faulting them
    # in again (one profile's CPU: 2.2-3.0 s); glibc's allocator keeps them: 1.7 s. A process-
    # wide choice, made here because profiling is where this product allocates; the variable
    # still decides when it is set.
    pa.set_memory_pool(pa.system_memory_pool())

# columns of a chunk profiled at once: each column's state is its own and the heavy steps
# (Arrow kernels, numpy sorts and ufuncs) release the GIL, so a second core profiles other
# columns meanwhile. Chunks below PARALLEL_ROWS are profiled in the calling thread, where
# handing columns to threads would cost more than it saves.
PROFILE_THREADS = max(1, min(int(os.environ.get("MONITORS_PROFILE_THREADS", "0")) or (os.cpu_count() or 1), 8))
PARALLEL_ROWS = 50_000
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(PROFILE_THREADS, thread_name_prefix="profile")
        return _pool


def _forget_pool() -> None:
    # a forked child (a worker process) inherits the pool but not its threads
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _each(work: Callable[[Any], Any], items: list[Any], parallel: bool) -> list[Any]:
    """``work`` applied to every item, on the profile's threads when ``parallel``; the first
    error is raised as if the work had run here."""
    if not parallel or PROFILE_THREADS == 1 or len(items) < 2:
        return [work(item) for item in items]
    return list(_executor().map(work, items))


# rows expanded at a time when a value -> count table is handed to the KLL sketch
EXPAND_ROWS = 1 << 20

_SECONDS_PER_UNIT = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True, slots=True)
class MetricValue:
    column: str | None   # None for table-level metrics
    metric: str
    value: float
    key: str = ""        # category value for "freq"


def _numpy(array: pa.Array) -> np.ndarray:
    """A null-free array of numbers as a read-only numpy view of its Arrow buffer. pyarrow's
    own to_numpy imports pandas on first use, which is most of a second of the CLI's
    start-up that ingestion has no other use for."""
    kind = "f" if pa.types.is_floating(array.type) else "u" if pa.types.is_unsigned_integer(array.type) else "i"
    dtype = np.dtype(f"{kind}{array.type.bit_width // 8}")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _arrow(x: np.ndarray) -> pa.Array:
    """A numpy array of numbers or booleans as an Arrow array sharing its memory (where it
    can); pa.array would import pandas, as to_numpy does."""
    if x.dtype == np.bool_:
        bits = np.packbits(x, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(x), [None, pa.py_buffer(bits)])
    x = np.ascontiguousarray(x)
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), len(x), [None, pa.py_buffer(x)])


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on uint64: a bijection that spreads every input bit
    over the whole word, so distinct 8-byte values never share a hash."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# each 8-byte word of a string is keyed by its position before it is mixed (looked up for
# the first positions, computed past them), so that reordered words hash apart
KEYED_WORDS = 64
_WORD_KEYS = _mix(np.arange(1, KEYED_WORDS + 1, dtype=np.uint64) * _GOLDEN)
# the low i bytes of a word kept, i = 0..8: a string's last word holds only its own bytes
_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _string_hashes(values: pa.Array) -> np.ndarray:
    """64-bit hashes of strings, vectorised over whole 8-byte words: a string's bytes read as
    little-endian words (the last one zero-filled), each word keyed by its position and mixed,
    the words XORed together and mixed with the length. A function of the string alone (not
    of the chunk it came in), so that sketches fed from different chunks agree; two distinct
    strings collide with probability about 2^-64. Word-wise rather than byte-wise: an eighth
    of the elements, a third of the time of the byte tabulation this replaced. No Python
    object is made per string."""
    values = pc.cast(values, pa.large_string()) if pa.types.is_string(values.type) else values
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset:values.offset + len(values) + 1]
    raw = values.buffers()[2]
    data = np.frombuffer(raw, np.uint8)[offsets[0]:offsets[-1]] if raw is not None else np.empty(0, np.uint8)
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    words = (lengths + 7) >> 3
    first = np.cumsum(words) - words  # each string's first word among all the words
    total = int(words.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(first, words)
    # every (unaligned) 8-byte window of the data, as one strided view over a padded copy
    padded = np.zeros(len(data) + 8, np.uint8)
    padded[:len(data)] = data
    windows = np.ndarray((len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    word = windows[np.repeat(starts, words) + 8 * within]
    word &= _LOW_BYTES[np.minimum(np.repeat(lengths, words) - 8 * within, 8)]
    if total and within.max() >= KEYED_WORDS:
        word ^= _mix((within + 1).astype(np.uint64) * _GOLDEN)
    else:
        word ^= _WORD_KEYS[within]
    _mix(word)
    found = np.zeros(len(values), dtype=np.uint64)
    present = lengths > 0
    if total:
        found[present] = np.bitwise_xor.reduceat(word, first[present])
    return _mix(found ^ (lengths.astype(np.uint64) * _GOLDEN))


def _hashes(values: pa.Array) -> np.ndarray:
    """64-bit hashes of a null-free array, computed over the whole array at once: numbers,
    dates and times through a bijective mix of their 8-byte form, strings word by word."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return _string_hashes(values)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    x = _numpy(values)
    # a copy (astype copies), since the mix works in place: floats by their bits, not truncated
    x = x.astype(np.float64 if x.dtype.kind == "f" else np.int64)
    return _mix(x.view(np.uint64))


class _DistinctSketch:
    """A k-minimum-values (theta) sketch of the distinct values of a column.

    It keeps the k smallest distinct 64-bit hashes seen; with the k-th smallest at fraction u
    of the hash range, (k - 1) / u estimates the distinct count without bias, relative
    standard error about 1/sqrt(k). While fewer than k hashes are kept their number is the
    count itself. DataSketches' HLL and theta sketches take one Python call per value (no
    bulk update in Python), which was over half of a profile's time; this takes whole arrays:
    one vectorised hash per chunk, and only hashes below the current k-th reach a sort."""

    def __init__(self, k: int = DISTINCT_K) -> None:
        self.k = k
        self._kept = np.empty(0, dtype=np.uint64)

    def add_hashes(self, hashes: np.ndarray) -> None:
        if len(self._kept) == self.k:
            hashes = hashes[hashes < self._kept[-1]]
            if len(hashes) == 0:
                return
        if len(hashes) > 4 * self.k:
            # only the k smallest of the new hashes can matter: a partition is linear, a sort is not
            hashes = np.partition(hashes, self.k)[: self.k + 1]
        # sorted and deduplicated by hand: numpy 2's np.unique hashes first, 20x slower here
        merged = np.sort(np.concatenate([self._kept, hashes]))
        distinct = np.empty(len(merged), dtype=bool)
        distinct[:1] = True
        np.not_equal(merged[1:], merged[:-1], out=distinct[1:])
        self._kept = merged[distinct][: self.k]

    def more_than(self, bound: int) -> bool:
        """Whether the values seen provably number more than ``bound``: equal values hash
        alike, so the distinct hashes kept are at most as many as the distinct values."""
        return len(self._kept) > bound

    def estimate(self) -> int:
        if len(self._kept) < self.k:
            return len(self._kept)
        fraction = (float(self._kept[-1]) + 1.0) / 2.0**64
        return round((self.k - 1) / fraction)


class _FrequentItems:
    """Misra-Gries frequent items over whole value -> count tables, as mergeable summaries
    (Agarwal et al. 2012) merge them: the summary and a chunk's counts are added up by key,
    then the (m+1)-th largest count is taken off every counter and the non-positive ones go.

    A counter never exceeds its item's true count and falls short of it by at most
    ``error``, itself at most rows / (m + 1); an item is reported only when its counter is
    above ``error``, where no unlisted item can be (DataSketches' NO_FALSE_POSITIVES rule,
    which reports the counter plus the error as the estimate). The algorithm is the one
    DataSketches' frequent-items sketch runs, there one Python call per item; here one Arrow
    group-sum and one numpy partition per chunk."""

    def __init__(self, counters: int = FREQUENT_COUNTERS) -> None:
        self.counters = counters
        self.error = 0
        self._keys: pa.Array | None = None
        self._counts = np.empty(0, dtype=np.int64)

    def add(self, keys: pa.Array, counts: np.ndarray) -> None:
        """``keys`` distinct, ``counts`` their counts in one chunk."""
        # the chunk is cut to a summary of its own first, so that only two summaries of at
        # most m counters meet in the (costly, for strings) sum by key
        keys, counts = self._cut(keys, counts)
        if self._keys is not None:
            keys, counts = self._cut(*_sum_by_key([(self._keys, self._counts), (keys, counts)]))
        self._keys, self._counts = keys, counts

    def _cut(self, keys: pa.Array, counts: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        if len(counts) <= self.counters:
            return keys, counts
        cut = int(np.partition(counts, len(counts) - self.counters - 1)[len(counts) - self.counters - 1])
        self.error += cut
        kept = counts > cut
        return keys.filter(_arrow(kept)), counts[kept] - cut

    def frequent(self) -> tuple[pa.Array, np.ndarray]:
        """The items provably frequent and their estimated counts."""
        assert self._keys is not None
        kept = self._counts > self.error
        return self._keys.filter(_arrow(kept)), self._counts[kept] + self.error


def _sum_by_key(parts: list[tuple[pa.Array, Any]]) -> tuple[pa.Array, np.ndarray]:
    """One row per key, its counts summed over ``parts``."""
    counts = np.concatenate([np.asarray(c, dtype=np.int64) if not isinstance(c, pa.Array) else _numpy(c)
                             for _, c in parts])
    # dictionary_encode + bincount rather than Table.group_by: the latter took 0.9 s
    # to sum 130k rows keyed by rounded doubles (cent amounts), 25x slower than this
    encoded = pc.dictionary_encode(pa.concat_arrays([k for k, _ in parts]))
    totals = np.bincount(_numpy(encoded.indices), weights=counts, minlength=len(encoded.dictionary))
    return encoded.dictionary, totals.astype(np.int64)


def _value_counts(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct values of a null-free array and how often each occurs, in order of first
    appearance. Arrow's dictionary encoding and a numpy bincount of its indices rather than
    pc.value_counts, whose result struct cost it a third more on near-unique columns (strings
    and doubles alike) and nothing less on the others."""
    encoded = pc.dictionary_encode(values)
    counts = np.bincount(_numpy(encoded.indices), minlength=len(encoded.dictionary))
    return encoded.dictionary, counts.astype(np.int64, copy=False)


class _Values:
    """Distinct values of one column and how often each occurs.

    Exact (a value -> count table) while the column has at most ``limit`` distinct values;
    past that a distinct-count sketch and, when ``frequent``, a frequent-items summary for
    the counts. ``on_overflow`` sees the exact table once, just before it goes.
    ``counts=False`` keeps only the distinct values (cheaper, for columns nobody counts)."""

    def __init__(self, limit: int, *, counts: bool, frequent: bool = False,
                 on_overflow: Callable[[pa.Array, pa.Array | None], None] | None = None) -> None:
        self.limit = limit
        self.counts = counts or frequent
        self.frequent = frequent
        self.on_overflow = on_overflow
        self._pending: list[tuple[pa.Array, pa.Array | None]] = []
        self._pending_len = 0
        self._keys: pa.Array | None = None
        self._key_counts: pa.Array | None = None
        self._distinct: _DistinctSketch | None = None
        self._frequent: _FrequentItems | None = None
        # a column that looks near-unique: its first values, held raw, and their sketch
        self._probe: _DistinctSketch | None = None
        self._raw: list[pa.Array] = []
        self._raw_len = 0

    @property
    def exact(self) -> bool:
        return self._distinct is None

    def add(self, values: pa.Array) -> None:
        """``values`` holds no nulls."""
        if len(values) == 0:
            return
        if not self.exact:
            self._sketch(values)
            return
        if self._probe is not None or (self._keys is None and not self._pending and self._looks_unique(values)):
            self._try_probe(values)
            return
        self._tabulate(values)

    def add_counts(self, keys: pa.Array, counts: np.ndarray) -> None:
        """A chunk already counted (as a dictionary-encoded one is): ``keys`` distinct and
        null-free, ``counts`` how often each occurred."""
        if len(keys) == 0:
            return
        if not self.exact:
            assert self._distinct is not None
            self._distinct.add_hashes(_hashes(keys))
            if self._frequent is not None:
                self._frequent.add(keys, counts)
            return
        self._end_probe()
        self._pend(keys, _arrow(counts) if self.counts else None)

    def _tabulate(self, values: pa.Array) -> None:
        if self.counts:
            keys, counts = _value_counts(values)
            self._pend(keys, _arrow(counts))
        else:
            self._pend(pc.unique(values), None)

    def _pend(self, keys: pa.Array, counts: pa.Array | None) -> None:
        self._pending.append((keys, counts))
        self._pending_len += len(keys)
        held = len(self._keys) if self._keys is not None else 0
        if self._pending_len >= max(held, MIN_MERGE) or self._pending_len > self.limit:
            self._merge()

    def _merge(self) -> None:
        self._end_probe()
        if not self._pending:
            return
        parts = self._pending
        if self._keys is not None:
            parts = [(self._keys, self._key_counts), *parts]
        if len(parts) == 1:
            # one chunk's value_counts or unique: already one row per value
            self._keys, self._key_counts = parts[0]
        elif self.counts:
            keys, totals = _sum_by_key(parts)
            self._keys, self._key_counts = keys, _arrow(totals)
        else:
            self._keys = pc.unique(pa.concat_arrays([k for k, _ in parts]))
        self._pending, self._pending_len = [], 0
        if len(self._keys) > self.limit:
            keys, counts = self._keys, self._key_counts
            self._keys = self._key_counts = None
            self._distinct = _DistinctSketch()
            if self.frequent:
                self._frequent = _FrequentItems()
            if self.on_overflow is not None and counts is not None:
                self.on_overflow(keys, counts)
            self._distinct.add_hashes(_hashes(keys))
            if self._frequent is not None:
                self._frequent.add(keys, _numpy(counts))

    def _looks_unique(self, values: pa.Array) -> bool:
        """Whether a column's first chunk looks near-unique (ids, measurements, times): then
        its values are held raw and sketched until the sketch proves they outgrow the exact
        table, rather than counted into a table that is outgrown anyway. Not where the table
        feeds a frequent-items summary, which needs the counts anyway, nor where the sketch
        cannot prove it (an exact limit past its k)."""
        if self.frequent or self.limit >= DISTINCT_K:
            return False
        sample = values.slice(0, SAMPLE)
        return pc.count_distinct(sample).as_py() >= 0.9 * len(sample)

    def _try_probe(self, values: pa.Array) -> None:
        if self._probe is None:
            self._probe = _DistinctSketch()
        self._probe.add_hashes(_hashes(values))
        self._raw.append(values)
        self._raw_len += len(values)
        if self._probe.more_than(self.limit):
            # proven: more distinct values than the table may hold, so there is no table
            self._distinct, self._probe = self._probe, None
            raw, self._raw, self._raw_len = pa.concat_arrays(self._raw), [], 0
            if self.on_overflow is not None:
                self.on_overflow(raw, None)
        elif self._raw_len > 2 * self.limit:
            self._end_probe()  # twice the limit in rows without proof: repeats after all

    def _end_probe(self) -> None:
        """Unproven: the raw values go into the exact table as if counted on arrival."""
        if self._probe is None:
            return
        raw, self._raw, self._raw_len, self._probe = self._raw, [], 0, None
        for values in raw:
            if self.exact:
                self._tabulate(values)
            else:  # the table was outgrown after all, part way through
                self._sketch(values)

    def _sketch(self, values: pa.Array) -> None:
        """A chunk past the exact table: every value hashed (cheaper than removing repeats
        first, which the sketch ignores anyway); the frequent items take the chunk's counts."""
        assert self._distinct is not None
        if self._frequent is None:
            self._distinct.add_hashes(_hashes(values))
            return
        keys, counts = _value_counts(values)
        self._distinct.add_hashes(_hashes(keys))
        self._frequent.add(keys, counts)

    def histogram(self) -> tuple[pa.Array, pa.Array] | None:
        """The exact value -> count table; None once the column outgrew it."""
        if self.exact:
            self._merge()  # may itself outgrow the table
        if not self.exact or not self.counts:
            return None
        if self._keys is None:
            return pa.nulls(0, pa.float64()), pa.nulls(0, pa.int64())
        return self._keys, self._key_counts

    def distinct(self) -> int:
        if self.exact:
            self._merge()  # may itself outgrow the table
        if self.exact:
            return 0 if self._keys is None else len(self._keys)
        assert self._distinct is not None
        return self._distinct.estimate()

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k most frequent values, most frequent first; ties by value, so that the
        result does not depend on how the batch was chunked."""
        if self.exact:
            self._merge()  # may itself outgrow the table
        if self.exact:
            if self._keys is None:
                return []
            table = pa.table({"k": pc.cast(self._keys, pa.string()), "c": self._key_counts})
            table = table.sort_by([("c", "descending"), ("k", "ascending")]).slice(0, k)
            return list(zip(table.column("k").to_pylist(), table.column("c").to_pylist()))
        assert self._frequent is not None
        keys, counts = self._frequent.frequent()
        table = pa.table({"k": pc.cast(keys, pa.string()), "c": _arrow(counts.astype(np.int64))})
        table = table.sort_by([("c", "descending"), ("k", "ascending")]).slice(0, k)
        return list(zip(table.column("k").to_pylist(), table.column("c").to_pylist()))


def _finite_histogram(keys: pa.Array, counts: pa.Array | None) -> tuple[np.ndarray, np.ndarray]:
    """``counts`` None: each key stands for one value."""
    values = _numpy(keys).astype(np.float64, copy=False)
    weights = np.ones(len(values), np.int64) if counts is None else _numpy(counts)
    finite = np.isfinite(values)
    return values[finite], weights[finite]


def _histogram_quantiles(values: np.ndarray, weights: np.ndarray, ranks: list[float]) -> list[float]:
    """numpy's (and pandas') linear-interpolation quantiles of the multiset the histogram
    stands for, without expanding it: the order statistics are found in the cumulative counts."""
    order = np.argsort(values, kind="stable")
    values, ends = values[order], np.cumsum(weights[order])
    n = int(ends[-1])
    positions = np.asarray(ranks) * (n - 1)
    below = np.floor(positions)
    fraction = positions - below
    low = values[np.searchsorted(ends, below, side="right")]
    high = values[np.searchsorted(ends, np.minimum(below + 1, n - 1), side="right")]
    # the same two-sided lerp numpy uses, so that results agree to the last bit where possible
    step = high - low
    found = np.where(fraction >= 0.5, high - step * (1 - fraction), low + step * fraction)
    return [float(v) for v in found]


class _Quantiles:
    """Exact quantiles (pandas' default linear interpolation) for as long as possible.

    While the column's value -> count table is exact, quantiles come from it: a low-
    cardinality column stays exact at any row count. Once that table is outgrown, the finite
    values are held raw up to ``limit``; past that a KLL sketch takes them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._histogram_mode = True
        self._held: list[np.ndarray] = []
        self._held_len = 0
        self._kll: ds.kll_doubles_sketch | None = None

    def outgrown(self, keys: pa.Array, counts: pa.Array | None) -> None:
        """The exact table is going: carry what it held (including the current chunk);
        ``counts`` None: there was no table, ``keys`` are the chunk's values."""
        values, weights = _finite_histogram(keys, counts)
        self._histogram_mode = False
        total = int(weights.sum())
        if total <= self.limit:
            self._held, self._held_len = [np.repeat(values, weights)], total
            return
        self._kll = ds.kll_doubles_sketch(KLL_K)
        # expanded a slice at a time, so a few heavy values cannot blow memory up
        ends = np.cumsum(weights)
        start = 0
        while start < len(values):
            stop = max(int(np.searchsorted(ends, ends[start] - weights[start] + EXPAND_ROWS, side="right")),
                       start + 1)
            self._kll.update(np.repeat(values[start:stop], weights[start:stop]))
            start = stop

    def add(self, values: np.ndarray) -> None:
        """``values``: finite float64; called before the same chunk reaches the value table."""
        if len(values) == 0 or self._histogram_mode:
            return
        if self._kll is not None:
            self._kll.update(np.ascontiguousarray(values))
            return
        # a view would pin the whole Arrow chunk it came from
        self._held.append(values if values.flags.owndata else values.copy())
        self._held_len += len(values)
        if self._held_len > self.limit:
            self._kll = ds.kll_doubles_sketch(KLL_K)
            for held in self._held:
                self._kll.update(held)
            self._held, self._held_len = [], 0

    def values(self, histogram: tuple[pa.Array, pa.Array] | None) -> dict[str, float]:
        ranks = list(QUANTILES.values())
        if self._histogram_mode:
            if histogram is None:
                return {}
            values, weights = _finite_histogram(*histogram)
            if not weights.sum():
                return {}
            found = _histogram_quantiles(values, weights, ranks)
        elif self._kll is not None:
            found = self._kll.get_quantiles(ranks, inclusive=True)
        elif self._held_len:
            # the concatenation is ours to reorder: without overwrite_input numpy copies it
            # once more (a fresh 8 MB per million values, 40% of this step's time)
            found = np.quantile(np.concatenate(self._held), ranks, overwrite_input=True)
        else:
            return {}
        return dict(zip(QUANTILES, (float(v) for v in found)))


class _Column:
    """Counts every column has; subclasses add what their type allows."""

    def takes(self, arrow_type: pa.DataType) -> bool:
        """Whether update() takes chunks of this type as they are (else they are cast)."""
        return arrow_type == self.arrow_type

    def __init__(self, name: str, arrow_type: pa.DataType) -> None:
        self.name = name
        self.arrow_type = arrow_type
        self.count = 0
        self.nulls = 0

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        self.count += len(array) - array.null_count

    def metrics(self, rows: int) -> list[MetricValue]:
        found = [("count", self.count), ("nulls", self.nulls)]
        if rows:
            found.append(("null_fraction", self.nulls / rows))
        found += self._typed()
        return [MetricValue(self.name, metric, float(value)) for metric, value in found]

    def _typed(self) -> list[tuple[str, float]]:
        return []


class _Moments:
    """Count, mean and sum of squared deviations; partial results merge by Chan et al.'s
    parallel update, which stays accurate where a running sum of squares would cancel."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        n = len(values)
        if n == 0:
            return
        mean = float(values.mean(dtype=np.float64))
        deviations = values.astype(np.float64, copy=False) - mean
        # squared in place and summed by numpy, not np.dot: BLAS threads spin on a busy machine;
        # deviations past ~1e154 overflow when squared: the spread is then unmeasurable (inf)
        with np.errstate(over="ignore"):
            np.square(deviations, out=deviations)
        m2 = float(deviations.sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def values(self) -> list[tuple[str, float]]:
        found = []
        if self.n:
            found.append(("mean", self.mean))
        if self.n > 1 and math.isfinite(self.m2):  # every stored value is finite
            found.append(("std", math.sqrt(self.m2 / (self.n - 1))))
        return found


class _Numeric(_Column):
    def __init__(self, name: str, arrow_type: pa.DataType, *, distinct_limit: int,
                 quantile_limit: int, categorical: bool, top_k: int) -> None:
        super().__init__(name, arrow_type)
        self.is_float = pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
        self.top_k = top_k
        self.categorical = categorical
        self.quantiles = _Quantiles(quantile_limit)
        self.values = _Values(distinct_limit, counts=True, frequent=categorical,
                              on_overflow=self.quantiles.outgrown)
        self.moments = _Moments()
        self.low = math.inf
        self.high = -math.inf
        self.zeros = self.negatives = self.infinite = 0

    def update(self, array: pa.Array) -> None:
        present = pc.drop_null(array)
        if pa.types.is_decimal(present.type):
            present = pc.cast(present, pa.float64())
        self.nulls += array.null_count
        x = _numpy(present)
        finite = x
        if self.is_float:
            nan = np.isnan(x)
            missing = int(np.count_nonzero(nan))
            if missing:
                x = x[~nan]
                self.nulls += missing
            # -0.0 and 0.0 are one value to a person (and to pandas' nunique)
            x = x + 0.0
            infinite = np.isinf(x)
            infinities = int(np.count_nonzero(infinite))
            self.infinite += infinities
            finite = x[~infinite] if infinities else x
        self.count += len(x)
        if len(x) == 0:
            return
        self.zeros += int(np.count_nonzero(x == 0))
        self.negatives += int(np.count_nonzero(x < 0))
        if len(finite):
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))
        self.moments.add(finite)
        self.quantiles.add(finite.astype(np.float64, copy=False))
        self.values.add(_arrow(x) if self.is_float else present)

    def _typed(self) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = [("distinct", self.values.distinct())]
        if self.moments.n:
            found += [("min", self.low), ("max", self.high)]
        found += self.moments.values()
        found += list(self.quantiles.values(self.values.histogram()).items())
        found += [("zeros", self.zeros), ("negatives", self.negatives)]
        if self.is_float:
            found.append(("infinite", self.infinite))
        return found

    def metrics(self, rows: int) -> list[MetricValue]:
        found = super().metrics(rows)
        if self.categorical:
            found += _frequencies(self.name, self.values, self.count, self.top_k)
        return found


class _Strings(_Column):
    def __init__(self, name: str, arrow_type: pa.DataType, *, distinct_limit: int, top_k: int) -> None:
        super().__init__(name, arrow_type)
        self.top_k = top_k
        self.values = _Values(distinct_limit, counts=True, frequent=True)
        self.length_low = math.inf
        self.length_high = -math.inf
        self.length_sum = 0

    def takes(self, arrow_type: pa.DataType) -> bool:
        # a dictionary-encoded chunk (low-cardinality text as Parquet stores it) is counted
        # by its codes: one bincount over small integers, each string touched once
        return arrow_type == self.arrow_type or (
            pa.types.is_dictionary(arrow_type)
            and (pa.types.is_string(arrow_type.value_type) or pa.types.is_large_string(arrow_type.value_type)))

    def update(self, array: pa.Array) -> None:
        if pa.types.is_dictionary(array.type):
            if array.dictionary.null_count == 0:
                self._update_encoded(array)
                return
            array = pc.cast(array, self.arrow_type)  # a null among the values: rare, decoded
        super().update(array)
        present = pc.drop_null(array)
        if len(present) == 0:
            return
        lengths = pc.utf8_length(present)
        extremes = pc.min_max(lengths)
        self.length_low = min(self.length_low, extremes["min"].as_py())
        self.length_high = max(self.length_high, extremes["max"].as_py())
        self.length_sum += pc.sum(lengths).as_py()
        self.values.add(present)

    def _update_encoded(self, array: pa.DictionaryArray) -> None:
        super().update(array)
        present = pc.drop_null(array)
        if len(present) == 0:
            return
        counts = np.bincount(_numpy(present.indices), minlength=len(present.dictionary))
        used = counts > 0
        # Arrow does not promise a dictionary without repeats: they are summed
        keys = present.dictionary.filter(_arrow(used))
        if keys.type != self.arrow_type:  # string beside large_string: one type per column's table
            keys = pc.cast(keys, self.arrow_type)
        keys, counts = _sum_by_key([(keys, counts[used])])
        lengths = _numpy(pc.utf8_length(keys))
        self.length_low = min(self.length_low, int(lengths.min()))
        self.length_high = max(self.length_high, int(lengths.max()))
        self.length_sum += int(np.dot(lengths.astype(np.int64), counts))
        self.values.add_counts(keys, counts)

    def _typed(self) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = [("distinct", self.values.distinct())]
        if self.count:
            found += [("length_min", self.length_low), ("length_mean", self.length_sum / self.count),
                      ("length_max", self.length_high)]
        return found

    def metrics(self, rows: int) -> list[MetricValue]:
        return super().metrics(rows) + _frequencies(self.name, self.values, self.count, self.top_k)


class _Booleans(_Column):
    def __init__(self, name: str, arrow_type: pa.DataType, *, top_k: int) -> None:
        super().__init__(name, arrow_type)
        self.top_k = top_k
        self.values = _Values(limit=2, counts=True, frequent=True)

    def update(self, array: pa.Array) -> None:
        super().update(array)
        self.values.add(pc.drop_null(array))

    def _typed(self) -> list[tuple[str, float]]:
        return [("distinct", self.values.distinct())]

    def metrics(self, rows: int) -> list[MetricValue]:
        return super().metrics(rows) + _frequencies(self.name, self.values, self.count, self.top_k)


class _Temporal(_Column):
    """Dates and timestamps: extremes as epoch seconds (UTC), and the distinct count."""

    def __init__(self, name: str, arrow_type: pa.DataType, *, distinct_limit: int) -> None:
        super().__init__(name, arrow_type)
        # seconds = stored * scale / per: a division by the exact unit count rounds once,
        # where multiplying by an inexact 1e-6 would round twice
        if pa.types.is_date32(arrow_type):
            self.storage, self.scale, self.per = pa.int32(), 86_400, 1
        elif pa.types.is_date64(arrow_type):
            self.storage, self.scale, self.per = pa.int64(), 1, 1_000
        else:
            self.storage, self.scale, self.per = pa.int64(), 1, _SECONDS_PER_UNIT[arrow_type.unit]
        self.values = _Values(distinct_limit, counts=False)
        self.low: int | None = None
        self.high: int | None = None

    def update(self, array: pa.Array) -> None:
        super().update(array)
        present = pc.drop_null(array).view(self.storage)
        if len(present) == 0:
            return
        extremes = pc.min_max(present)
        low, high = extremes["min"].as_py(), extremes["max"].as_py()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        self.values.add(present)

    def _typed(self) -> list[tuple[str, float]]:
        found: list[tuple[str, float]] = [("distinct", self.values.distinct())]
        if self.low is not None and self.high is not None:
            found += [("min", self.low * self.scale / self.per), ("max", self.high * self.scale / self.per)]
        return found


MAX_KEY_CHARS = 200


def category_key(value: str) -> str:
    """A category as a metric key: a value longer than MAX_KEY_CHARS (a free-text field
    taken for a category) is cut, with a digest of the whole value so that two long values
    sharing a prefix stay apart."""
    if len(value) <= MAX_KEY_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{value[:MAX_KEY_CHARS - 14]}…#{digest}"


def _frequencies(column: str, values: _Values, count: int, top_k: int) -> list[MetricValue]:
    top = values.top(top_k)
    listed = sum(c for _, c in top)
    rows = [MetricValue(column, "freq", float(c), category_key(key)) for key, c in top]
    rows.append(MetricValue(column, "freq_other", float(max(count - listed, 0))))
    return rows


def _logical(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


class BatchProfiler:
    """Profiles one batch fed as a stream of chunks; ``metrics()`` may be called at any time.

    ``schema`` fixes the columns and how each is profiled; a chunk whose column arrives with
    another Arrow type (a dictionary-encoded string, int32 for int64) is cast to it."""

    def __init__(self, schema: pa.Schema, *, top_k: int = 20, exact_distinct_limit: int = 100_000,
                 categorical: Collection[str] = (), exact_quantile_limit: int = 1_000_000) -> None:
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if exact_distinct_limit < 0 or exact_quantile_limit < 0:
            raise ValueError("exact_distinct_limit and exact_quantile_limit must be >= 0")
        unknown = set(categorical) - set(schema.names)
        if unknown:
            raise ValueError(f"categorical columns not in the schema: {sorted(unknown)}")
        self.schema = schema
        self.rows = 0
        self._columns = [
            self._column(field.name, _logical(field.type), top_k=top_k, distinct_limit=exact_distinct_limit,
                         quantile_limit=exact_quantile_limit, categorical=field.name in categorical)
            for field in schema
        ]

    @staticmethod
    def _column(name: str, arrow_type: pa.DataType, *, top_k: int, distinct_limit: int,
                quantile_limit: int, categorical: bool) -> _Column:
        if pa.types.is_boolean(arrow_type):
            return _Booleans(name, arrow_type, top_k=top_k)
        if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
            return _Numeric(name, arrow_type, distinct_limit=distinct_limit, quantile_limit=quantile_limit,
                            categorical=categorical, top_k=top_k)
        if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            return _Strings(name, arrow_type, distinct_limit=distinct_limit, top_k=top_k)
        if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
            return _Temporal(name, arrow_type, distinct_limit=distinct_limit)
        return _Column(name, arrow_type)

    def update(self, chunk: pa.RecordBatch | pa.Table) -> None:
        missing = [name for name in self.schema.names if name not in chunk.schema.names]
        if missing:
            raise ValueError(f"chunk lacks columns {missing}")

        def update(column: _Column) -> None:
            data = chunk.column(column.name)
            parts = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
            for part in parts:
                if not column.takes(part.type):
                    part = pc.cast(part, column.arrow_type)
                column.update(part)

        _each(update, self._columns, chunk.num_rows >= PARALLEL_ROWS)
        self.rows += chunk.num_rows

    def metrics(self) -> list[MetricValue]:
        found = [MetricValue(None, "row_count", float(self.rows)),
                 MetricValue(None, "column_count", float(len(self._columns)))]
        # the last merges and the exact quantiles are as heavy as a chunk
        for metrics in _each(lambda column: column.metrics(self.rows), self._columns,
                             self.rows >= PARALLEL_ROWS):
            found += metrics
        return found


def profile_table(table: Any, **options: Any) -> list[MetricValue]:
    """Profiles a whole table (Arrow, or a pandas DataFrame) as a single chunk; ``options``
    are BatchProfiler's. pandas is not imported here: ingestion never needs it."""
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    profiler = BatchProfiler(table.schema, **options)
    profiler.update(table)
    return profiler.metrics()
