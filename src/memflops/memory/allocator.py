"""PyTorch's CUDA caching allocator, simulated: the memory it reserves for a sequence of
allocations and frees (what `torch.cuda.memory_reserved()` reports and nvidia-smi shows,
less the CUDA context).

Pure Python, no torch: `CachingAllocator` takes `malloc(key, nbytes)` and `free(key)`
in order and keeps the blocks, segments and statistics the real allocator keeps.
The policy is read from PyTorch's source at the version this project pins (torch
2.14.1; the constants and options checked against the headers its wheel installs):

- constants, `c10/core/AllocatorConfig.h`: every request rounded to at least
  `kMinBlockSize` = 512 B; requests up to `kSmallSize` = 1 MiB go to the small pool,
  whose segments are `kSmallBuffer` = 2 MiB; requests under `kMinLargeAlloc` = 10 MiB
  get a segment of `large_segment_size` (default 20 MiB, `kLargeBuffer` in
  `c10/cuda/CUDACachingAllocator.cpp`); larger ones a segment rounded up to
  `kRoundLarge` = 2 MiB.
- `CUDACachingAllocator.cpp`, `DeviceCachingAllocator`:
  `round_size` and `roundup_power2_next_division` (512-byte rounding, or the next of
  N divisions between two powers of two when `roundup_power2_divisions` asks for
  it); `get_pool` (small when the rounded size is at most 1 MiB);
  `get_allocation_size` (the segment sizes above); `get_free_block` (best fit: the
  lower bound of (stream, size, address) in the pool's set of free blocks, so the
  smallest free block of the same stream that is large enough, the lowest address
  on a tie; a request under `max_split_size` never takes a block at or above it,
  and one at or above it only takes a block less than `max_non_split_rounding`
  (default 20 MiB) larger); `should_split` (a small-pool block, or any block with
  expandable segments, is split when at least 512 B remain; a large-pool block when
  the request is under `max_split_size` and more than 1 MiB remains);
  `alloc_found_block` (the request takes the low end, the rest stays free);
  `free_block` and `try_merge_blocks` (a freed block merges with its free
  neighbours in the same segment, never across segments); `malloc` and
  `alloc_block` (no free block: a new segment; when that would exceed the
  capacity, `release_available_cached_blocks` frees cached blocks at or above
  `max_split_size`, then `release_cached_blocks` frees every cached segment with
  no block in use, and the request is tried again: `num_alloc_retries`).
- expandable segments, `Note [Expandable Segments]` and `find_expandable_block`,
  `map_block`, `try_allocate_expandable_block`, `unmap_block`, `release_blocks`:
  one segment per stream and pool with a large virtual range, of which only what is
  needed is mapped, in pages of 2 MiB (small pool) or `large_segment_size` (large
  pool); a request that no free block fits maps pages at the lowest free address
  that has room, which is normally the segment's end, merging with the free block
  there; `get_free_block` prefers blocks that are not at the mapped end. Pages are
  unmapped only when the cache is released (out of memory).
- options, `c10/core/AllocatorConfig.cpp` (`AcceleratorAllocatorConfig::parseArgs`
  and its parsers): the `PYTORCH_CUDA_ALLOC_CONF` / `PYTORCH_ALLOC_CONF` syntax
  `key:value,key:[a:b,>:c]`; see `AllocatorConfig.parse`.

What is left out: several streams in one step (every capture runs on one stream;
`malloc` takes a stream all the same), events that keep a freed block from reuse
until another stream is done with it, CUDA graph pools,
`garbage_collection_threshold` (it acts only under a memory fraction) and
`backend:cudaMallocAsync` (another allocator).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import NamedTuple

from memflops.errors import UsageError, did_you_mean

MIB = 2**20

MIN_BLOCK_SIZE = 512
"""`kMinBlockSize`: every request is rounded up to a multiple of it (at least 512 B)."""
SMALL_SIZE = 1 * MIB
"""`kSmallSize`: the largest request of the small pool."""
SMALL_BUFFER = 2 * MIB
"""`kSmallBuffer`: the size of a small-pool segment (and page, with expandable segments)."""
MIN_LARGE_ALLOC = 10 * MIB
"""`kMinLargeAlloc`: requests under it (and over 1 MiB) get a `large_segment_size` segment."""
ROUND_LARGE = 2 * MIB
"""`kRoundLarge`: larger requests get a segment of their size rounded up to it."""
LARGE_BUFFER = 20 * MIB
"""`kLargeBuffer`: the default `large_segment_size` and `max_non_split_rounding`."""
ROUNDUP_INTERVALS = 16
"""`roundup_power2_divisions` holds one value per power-of-two interval, 1 MiB to 64 GiB."""
ROUNDUP_START_LOG2 = 20
"""log2 of the first interval's start (1 MiB)."""

_EXPANDABLE_RANGE = 2**50
"""Virtual bytes an expandable segment reserves (the real one reserves 1 1/8 of the GPU's
memory); only mapped pages count as reserved."""
_SEGMENT_ALIGN = 2 * MIB
"""Alignment of the simulated addresses of new segments."""

_IGNORED_KEYS = frozenset({
    "garbage_collection_threshold", "release_lock_on_cudamalloc", "release_lock_on_hipmalloc",
    "pinned_use_cuda_host_register", "pinned_use_hip_host_register",
    "pinned_num_register_threads", "pinned_use_background_threads",
    "pinned_reserve_segment_size_mb", "pinned_free_catch_all",
    "graph_capture_record_stream_reuse", "per_process_memory_fraction",
    "throw_on_cudamalloc_oom", "expandable_segments_handle_type",
})
"""Options PyTorch accepts that change nothing this simulation models."""
_KEYS = (
    "max_split_size_mb", "max_non_split_rounding_mb", "roundup_power2_divisions",
    "expandable_segments", "large_segment_size_mb", "backend", *sorted(_IGNORED_KEYS),
)


@dataclass(frozen=True)
class AllocatorConfig:
    """The allocator's options, as `PYTORCH_CUDA_ALLOC_CONF` sets them (bytes)."""

    max_split_size: int | None = None
    """Blocks at least this large are never split (None: unlimited, the default)."""
    max_non_split_rounding: int = LARGE_BUFFER
    """How much larger than a request at or above `max_split_size` a reused block may be."""
    roundup_power2_divisions: tuple[int, ...] = (0,) * ROUNDUP_INTERVALS
    """Divisions per power-of-two interval from 1 MiB (index 0) to 64 GiB (index 15)."""
    expandable_segments: bool = False
    large_segment_size: int = LARGE_BUFFER
    text: str = ""
    """The option string as given ("" for the defaults)."""

    @classmethod
    def parse(cls, text: str | None) -> AllocatorConfig:
        """Options from a `PYTORCH_CUDA_ALLOC_CONF` string, e.g. "expandable_segments:True"
        or "max_split_size_mb:128,roundup_power2_divisions:[256:1,>:4]".

        As PyTorch reads them: sizes in MiB, `max_split_size_mb` and
        `max_non_split_rounding_mb` at least 20, divisions powers of two (0: none),
        booleans spelled True or False. An unknown key is an error here (PyTorch skips
        it silently, which hides a misspelt option).
        """
        if text is None or not text.strip():
            return cls()
        tokens = _tokens(text)
        values: dict[str, object] = {}
        i = 0
        while i < len(tokens):
            key = tokens[i]
            if key in "[]:,":
                raise _bad(text, f"expected an option name, found {key!r}")
            if i + 1 >= len(tokens) or tokens[i + 1] != ":":
                raise _bad(text, f"expected {key}:VALUE")
            if key == "roundup_power2_divisions":
                values[key], i = _divisions(text, tokens, i + 2)
            else:
                if i + 2 >= len(tokens):
                    raise _bad(text, f"{key} has no value")
                values[key] = _value(text, key, tokens[i + 2])
                i += 3
            if i < len(tokens):
                if tokens[i] != ",":
                    raise _bad(text, f"expected ',' after {key}'s value, found {tokens[i]!r}")
                i += 1
        return cls(
            max_split_size=values.get("max_split_size_mb"),  # type: ignore[arg-type]
            max_non_split_rounding=values.get(  # type: ignore[arg-type]
                "max_non_split_rounding_mb", LARGE_BUFFER
            ),
            roundup_power2_divisions=values.get(  # type: ignore[arg-type]
                "roundup_power2_divisions", (0,) * ROUNDUP_INTERVALS
            ),
            expandable_segments=bool(values.get("expandable_segments", False)),
            large_segment_size=values.get(  # type: ignore[arg-type]
                "large_segment_size_mb", LARGE_BUFFER
            ),
            text=text.strip(),
        )

    def divisions(self, size: int) -> int:
        """`roundup_power2_divisions(size)`: the divisions of the interval holding `size`."""
        index = max(size.bit_length() - 1 - ROUNDUP_START_LOG2, 0)
        return self.roundup_power2_divisions[min(index, ROUNDUP_INTERVALS - 1)]

    def round_size(self, size: int) -> int:
        """`round_size`: the bytes a request of `size` bytes takes."""
        if size < MIN_BLOCK_SIZE:
            return MIN_BLOCK_SIZE
        divisions = self.divisions(size)
        if divisions > 1 and size > MIN_BLOCK_SIZE * divisions:
            return roundup_power2_next_division(size, divisions)
        return -(-size // MIN_BLOCK_SIZE) * MIN_BLOCK_SIZE

    def allocation_size(self, size: int) -> int:
        """`get_allocation_size`: the segment a rounded request of `size` bytes creates."""
        if size <= SMALL_SIZE:
            return SMALL_BUFFER
        if size < MIN_LARGE_ALLOC:
            return self.large_segment_size
        return -(-size // ROUND_LARGE) * ROUND_LARGE


def roundup_power2_next_division(size: int, divisions: int) -> int:
    """The smallest of `divisions` equal steps between the powers of two around `size`
    that is at least `size` (1200 in 4 divisions of 1024..2048: 1280)."""
    if size & (size - 1) == 0:
        return size
    floor = 1 << (size.bit_length() - 1)
    step = floor >> (divisions.bit_length() - 1)
    if step == 0:
        return floor << 1
    rounded = size & ~(step - 1)
    return size if rounded == size else rounded + step


def _tokens(text: str) -> list[str]:
    """`ConfigTokenizer`: names and values, with ':', ',', '[' and ']' as tokens of their own."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch in ",:[]":
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        elif not ch.isspace():
            word += ch
    if word:
        tokens.append(word)
    return tokens


def _bad(text: str, why: str) -> UsageError:
    return UsageError(
        f"bad allocator option string {text!r}: {why} (the form PYTORCH_CUDA_ALLOC_CONF takes, "
        f"e.g. \"expandable_segments:True,max_split_size_mb:256\")"
    )


def _value(text: str, key: str, token: str) -> object:
    if key in ("max_split_size_mb", "max_non_split_rounding_mb", "large_segment_size_mb"):
        mib = _int(text, key, token)
        least = LARGE_BUFFER // MIB if key != "large_segment_size_mb" else 1
        if mib < least:
            raise _bad(text, f"{key} must be at least {least}, got {mib}")
        return mib * MIB
    if key == "expandable_segments":
        if token not in ("True", "False"):
            raise _bad(text, f"expandable_segments takes True or False, got {token!r}")
        return token == "True"
    if key == "backend":
        if token != "native":
            raise _bad(
                text, f"backend {token!r} is not simulated: only the native caching allocator is"
            )
        return token
    if key in _IGNORED_KEYS:
        return token
    raise _bad(text, f"unknown option {key!r}{did_you_mean(key, _KEYS)}")


def _int(text: str, key: str, token: str) -> int:
    if not token.isdigit():
        raise _bad(text, f"{key} takes a whole number, got {token!r}")
    return int(token)


def _divisions(text: str, tokens: list[str], i: int) -> tuple[tuple[int, ...], int]:
    """`parseRoundUpPower2Divisions`: one power of two for every interval, or a list
    `[MiB:divisions, ..., >:divisions]`; returns the 16 values and the next token's index."""

    def division(token: str) -> int:
        value = _int(text, "roundup_power2_divisions", token)
        if value & (value - 1):
            raise _bad(text, f"roundup_power2_divisions: {value} is not a power of two (or 0)")
        return value

    if i >= len(tokens):
        raise _bad(text, "roundup_power2_divisions has no value")
    if tokens[i] != "[":
        return (division(tokens[i]),) * ROUNDUP_INTERVALS, i + 1
    values = [0] * ROUNDUP_INTERVALS
    first, last = True, 0
    i += 1
    while i < len(tokens) and tokens[i] != "]":
        if i + 2 >= len(tokens) or tokens[i + 1] != ":":
            raise _bad(text, "roundup_power2_divisions: expected [MiB:divisions,...]")
        boundary, value = tokens[i], division(tokens[i + 2])
        if boundary == ">":
            values[last + 1:] = [value] * (ROUNDUP_INTERVALS - last - 1)
        else:
            mib = _int(text, "roundup_power2_divisions", boundary)
            if mib == 0 or mib & (mib - 1):
                raise _bad(text, f"roundup_power2_divisions: {mib} MiB is not a power of two")
            index = min(mib.bit_length() - 1, ROUNDUP_INTERVALS - 1)
            if first:
                values[:index] = [value] * index
                first = False
            values[index] = value
            last = index
        i += 3
        if i < len(tokens) and tokens[i] == ",":
            i += 1
    if i >= len(tokens):
        raise _bad(text, "roundup_power2_divisions: no closing ']'")
    return tuple(values), i + 1


class OutOfMemory(Exception):
    """A request the capacity cannot hold, even after the cache was released."""

    def __init__(self, nbytes: int, reserved: int, allocated: int) -> None:
        super().__init__(
            f"out of memory: {nbytes} B requested with {reserved} B reserved, "
            f"{allocated} B allocated"
        )
        self.nbytes = nbytes


class SegmentState(NamedTuple):
    """One segment as `torch.cuda.memory_snapshot()` lists it (bytes)."""

    address: int
    pool: str
    """"small" or "large"."""
    size: int
    """Its size (expandable: the mapped bytes)."""
    allocated: int
    expandable: bool


class _Segment:
    __slots__ = ("address", "allocated", "expandable", "pool", "size")

    def __init__(self, address: int, size: int, pool: _Pool, expandable: bool) -> None:
        self.address = address
        self.size = size
        self.allocated = 0
        self.pool = pool
        self.expandable = expandable


class _Block:
    __slots__ = ("allocated", "mapped", "next", "pool", "prev", "ptr", "segment", "size", "stream")

    def __init__(
        self, ptr: int, size: int, stream: int, pool: _Pool, segment: _Segment, mapped: bool = True
    ) -> None:
        self.ptr = ptr
        self.size = size
        self.stream = stream
        self.pool = pool
        self.segment = segment
        self.mapped = mapped
        self.allocated = False
        self.prev: _Block | None = None
        self.next: _Block | None = None


class _Pool:
    """Free blocks ordered by (stream, size, address), as `BlockComparatorSize`; with
    expandable segments, unmapped ranges ordered by (stream, address)."""

    __slots__ = ("allocated", "free", "is_small", "name", "reserved", "segments", "unmapped")

    def __init__(self, is_small: bool) -> None:
        self.is_small = is_small
        self.name = "small" if is_small else "large"
        self.free: list[tuple[int, int, int]] = []
        self.unmapped: list[tuple[int, int]] = []
        self.reserved = 0
        self.allocated = 0
        self.segments: dict[int, _Segment] = {}


@dataclass
class AllocatorStats:
    """What `torch.cuda.memory_stats()` reports, in bytes (peaks since the last reset)."""

    allocated: int = 0
    """Bytes of blocks in use (`allocated_bytes.all.current`: rounded, with unsplit rests)."""
    reserved: int = 0
    allocated_peak: int = 0
    reserved_peak: int = 0
    requested: int = 0
    """Bytes the callers asked for (`requested_bytes.all.current`)."""
    requested_peak: int = 0
    num_alloc_retries: int = 0
    segment_allocs: int = 0
    """cudaMalloc calls and page mappings (`num_device_alloc`)."""
    tight_allocated: int = 0
    """The most bytes in use while the reserved bytes stood at their peak."""
    tight_by_pool: tuple[tuple[str, int, int, int], ...] = ()
    """At that moment, per pool: (pool, reserved, allocated, segments)."""
    tight_event: int = -1
    """The event count (`CachingAllocator.events`) of that moment."""


class CachingAllocator:
    """The caching allocator of one device (see the module docstring).

    `capacity` (bytes, None: unlimited) bounds the reserved bytes, as the GPU's free
    memory bounds cudaMalloc: a request past it releases the cache and retries, and
    raises `OutOfMemory` when even that cannot make room.
    """

    def __init__(self, config: AllocatorConfig | None = None, capacity: int | None = None) -> None:
        self.config = config or AllocatorConfig()
        self.capacity = capacity
        self.stats = AllocatorStats()
        self.events = 0
        """Calls of `malloc` and `free` so far."""
        self._pools = (_Pool(True), _Pool(False))
        self._at: dict[int, _Block] = {}
        """Every block (in use, free or unmapped) by its address."""
        self._live: dict[object, tuple[_Block, int]] = {}
        """Blocks in use by key, with the bytes requested."""
        self._next_address = _SEGMENT_ALIGN
        self._expandable: dict[tuple[int, bool], _Segment] = {}

    # --- the public surface -------------------------------------------------

    def malloc(self, key: object, nbytes: int, stream: int = 0) -> None:
        """Allocate `nbytes` for `key` (`DeviceCachingAllocator::malloc`); 0 bytes take none."""
        self.events += 1
        if nbytes == 0:
            return
        config = self.config
        size = config.round_size(nbytes)
        pool = self._pools[0] if size <= SMALL_SIZE else self._pools[1]
        block = self._get_free_block(pool, stream, size)
        if block is None:  # a new segment; failing that, release cache and retry
            block = self._alloc_block(pool, stream, size)
        if block is None and self._release_available(pool, stream, size):
            block = self._alloc_block(pool, stream, size)
        if block is None and self._release_cached():
            block = self._alloc_block(pool, stream, size, retry=True)
        if block is None:
            raise OutOfMemory(nbytes, self.stats.reserved, self.stats.allocated)
        block = self._alloc_found_block(block, size)
        self._live[key] = (block, nbytes)
        stats = self.stats
        stats.allocated += block.size
        stats.requested += nbytes
        block.segment.allocated += block.size
        block.pool.allocated += block.size
        if stats.allocated > stats.allocated_peak:
            stats.allocated_peak = stats.allocated
        if stats.requested > stats.requested_peak:
            stats.requested_peak = stats.requested
        if stats.reserved == stats.reserved_peak and stats.allocated > stats.tight_allocated:
            self._note_tight()

    def free(self, key: object) -> None:
        """Free `key`'s block (`free`, `free_block`): it merges with free neighbours."""
        self.events += 1
        found = self._live.pop(key, None)
        if found is None:
            return
        block, nbytes = found
        stats = self.stats
        stats.allocated -= block.size
        stats.requested -= nbytes
        block.segment.allocated -= block.size
        block.pool.allocated -= block.size
        block.allocated = False
        self._merge(block, block.prev)
        self._merge(block, block.next)
        insort(block.pool.free, (block.stream, block.size, block.ptr))

    def reset_peaks(self) -> None:
        """`torch.cuda.reset_peak_memory_stats()`: peaks restart from the current values."""
        stats = self.stats
        stats.allocated_peak = stats.allocated
        stats.reserved_peak = stats.reserved
        stats.requested_peak = stats.requested
        stats.tight_allocated = -1
        self._note_tight()

    def segments(self) -> list[SegmentState]:
        """The segments held now, by address (`torch.cuda.memory_snapshot()`)."""
        held = [s for pool in self._pools for s in pool.segments.values()]
        return [
            SegmentState(s.address, s.pool.name, s.size, s.allocated, s.expandable)
            for s in sorted(held, key=lambda s: s.address)
        ]

    @property
    def live_keys(self) -> list[object]:
        """Keys allocated and not freed, in allocation order."""
        return list(self._live)

    # --- bookkeeping --------------------------------------------------------

    def _note_tight(self) -> None:
        stats = self.stats
        stats.tight_allocated = stats.allocated
        stats.tight_event = self.events
        stats.tight_by_pool = tuple(
            (pool.name, pool.reserved, pool.allocated, len(pool.segments)) for pool in self._pools
        )

    def _reserve(self, pool: _Pool, nbytes: int) -> None:
        stats = self.stats
        stats.reserved += nbytes
        stats.segment_allocs += 1
        pool.reserved += nbytes
        if stats.reserved > stats.reserved_peak:
            stats.reserved_peak = stats.reserved
            stats.tight_allocated = -1

    def _release(self, pool: _Pool, nbytes: int) -> None:
        self.stats.reserved -= nbytes
        pool.reserved -= nbytes

    def _fits(self, nbytes: int) -> bool:
        return self.capacity is None or self.stats.reserved + nbytes <= self.capacity

    def _new_address(self, size: int) -> int:
        address = self._next_address
        self._next_address += -(-size // _SEGMENT_ALIGN) * _SEGMENT_ALIGN
        return address

    # --- finding and splitting blocks ---------------------------------------

    def _get_free_block(self, pool: _Pool, stream: int, size: int) -> _Block | None:
        """`get_free_block`: the best fit in `pool`, subject to `max_split_size`."""
        free = pool.free
        i = bisect_left(free, (stream, size, -1))
        if i == len(free) or free[i][0] != stream:
            return None
        block = self._at[free[i][2]]
        if block.segment.expandable:
            # Count a block at the mapped end as large as it could grow, so that blocks
            # elsewhere are taken first.
            grown = _expandable_size(block)
            while i + 1 < len(free) and free[i + 1][0] == stream:
                following = self._at[free[i + 1][2]]
                if _expandable_size(following) >= grown:
                    break
                i, block, grown = i + 1, following, _expandable_size(following)
        limit = self.config.max_split_size
        if limit is not None:
            if size < limit <= block.size:
                return None
            if size >= limit and block.size >= size + self.config.max_non_split_rounding:
                return None
        del free[i]
        return block

    def _alloc_found_block(self, block: _Block, size: int) -> _Block:
        """`alloc_found_block`: split when `should_split` says so; the request takes the
        low end."""
        remaining = block.size - size
        if block.pool.is_small or self.config.expandable_segments:
            split = remaining >= MIN_BLOCK_SIZE
        else:
            limit = self.config.max_split_size
            split = (limit is None or size < limit) and remaining > SMALL_SIZE
        if split:
            taken = _Block(block.ptr, size, block.stream, block.pool, block.segment)
            taken.prev = block.prev
            if taken.prev is not None:
                taken.prev.next = taken
            taken.next = block
            block.prev = taken
            block.ptr += size
            block.size = remaining
            self._at[taken.ptr] = taken
            self._at[block.ptr] = block
            insort(block.pool.free, (block.stream, block.size, block.ptr))
            block = taken
        block.allocated = True
        return block

    def _merge(self, dst: _Block, src: _Block | None) -> None:
        """`try_merge_blocks`: `dst` (not in the free set) absorbs its neighbour `src` if
        that is free and mapped alike; `src` leaves the free (or unmapped) set."""
        if src is None or src.allocated or src.mapped != dst.mapped:
            return
        pool = dst.pool
        if src.mapped:
            del pool.free[bisect_left(pool.free, (src.stream, src.size, src.ptr))]
        else:
            del pool.unmapped[bisect_left(pool.unmapped, (src.stream, src.ptr))]
        del self._at[src.ptr]
        if dst.prev is src:
            del self._at[dst.ptr]
            dst.ptr = src.ptr
            self._at[dst.ptr] = dst
            dst.prev = src.prev
            if dst.prev is not None:
                dst.prev.next = dst
        else:
            dst.next = src.next
            if dst.next is not None:
                dst.next.prev = dst
        dst.size += src.size

    # --- new memory -----------------------------------------------------------

    def _alloc_block(
        self, pool: _Pool, stream: int, size: int, retry: bool = False
    ) -> _Block | None:
        """`alloc_block`: a new segment (or, expandable, newly mapped pages) for `size`."""
        if retry:
            self.stats.num_alloc_retries += 1
        if self.config.expandable_segments:
            return self._alloc_expandable(pool, stream, size)
        nbytes = self.config.allocation_size(size)
        if not self._fits(nbytes):
            return None
        address = self._new_address(nbytes)
        segment = _Segment(address, nbytes, pool, expandable=False)
        pool.segments[address] = segment
        block = _Block(address, nbytes, stream, pool, segment)
        self._at[address] = block
        self._reserve(pool, nbytes)
        return block

    def _alloc_expandable(self, pool: _Pool, stream: int, size: int) -> _Block | None:
        """`try_allocate_expandable_block`: map pages until a free run of `size` exists."""
        candidate = self._find_expandable_block(pool, stream, size)
        if not candidate.mapped:
            mapped = self._map(candidate, min(candidate.size, size))
            if mapped is None:
                return None
            candidate = mapped
        while candidate.size < size:
            following = candidate.next
            assert following is not None and not following.mapped
            mapped = self._map(following, min(size - candidate.size, following.size))
            if mapped is None:
                return None
            candidate = mapped
        free = pool.free
        del free[bisect_left(free, (candidate.stream, candidate.size, candidate.ptr))]
        return candidate

    def _find_expandable_block(self, pool: _Pool, stream: int, size: int) -> _Block:
        """`find_expandable_block`: the lowest address where free and unmapped blocks
        together hold `size`; else a new segment."""
        unmapped = pool.unmapped
        i = bisect_left(unmapped, (stream, -1))
        while i < len(unmapped) and unmapped[i][0] == stream:
            block = self._at[unmapped[i][1]]
            if block.prev is not None and not block.prev.allocated:
                block = block.prev
            room = 0
            run: _Block | None = block
            while run is not None and room < size and not run.allocated:
                room += run.size
                run = run.next
            if room >= size:
                return block
            i += 1
        address = self._new_address(_EXPANDABLE_RANGE)
        segment = _Segment(address, 0, pool, expandable=True)
        pool.segments[address] = segment
        block = _Block(address, _EXPANDABLE_RANGE, stream, pool, segment, mapped=False)
        self._at[address] = block
        insort(unmapped, (stream, address))
        return block

    def _page(self, pool: _Pool) -> int:
        return SMALL_BUFFER if pool.is_small else self.config.large_segment_size

    def _map(self, block: _Block, size: int) -> _Block | None:
        """`map_block`: map whole pages from `block`'s start to cover `size` bytes; the
        mapped block merges with free neighbours and joins the free set."""
        pool = block.pool
        page = self._page(pool)
        offset = block.ptr - block.segment.address
        mapped = -(-(offset + size) // page) * page - offset
        if not self._fits(mapped):
            return None
        del pool.unmapped[bisect_left(pool.unmapped, (block.stream, block.ptr))]
        block.mapped = True
        if mapped < block.size:
            rest = _Block(
                block.ptr + mapped, block.size - mapped, block.stream, pool, block.segment,
                mapped=False,
            )
            rest.prev, rest.next = block, block.next
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = mapped
            self._at[rest.ptr] = rest
            insort(pool.unmapped, (rest.stream, rest.ptr))
        self._merge(block, block.prev)
        self._merge(block, block.next)
        insort(pool.free, (block.stream, block.size, block.ptr))
        block.segment.size += mapped
        self._reserve(pool, mapped)
        return block

    # --- giving memory back (only when the capacity is reached) -----------------

    def _release_available(self, pool: _Pool, stream: int, size: int) -> bool:
        """`release_available_cached_blocks`: with `max_split_size` set, free cached
        whole segments at or above it, one large enough or else the largest, until
        `size` bytes are freed."""
        limit = self.config.max_split_size
        if limit is None:
            return False
        want = max(size, limit)
        free = pool.free
        i = bisect_left(free, (stream, want, -1))
        if i < len(free) and free[i][0] == stream:
            return self._release_segment(self._at[free[i][2]])
        released = 0
        i -= 1
        while released < want and i >= 0 and free[i][0] == stream and free[i][1] >= limit:
            block = self._at[free[i][2]]
            if self._release_segment(block):
                released += block.size
            i -= 1
        return released >= want

    def _release_cached(self) -> bool:
        """`release_cached_blocks`: free every cached segment with no block in use and, with
        expandable segments, unmap every whole free page."""
        for pool in (self._pools[1], self._pools[0]):
            for _, _, ptr in list(pool.free):
                block = self._at.get(ptr)
                if block is None or block.allocated or not block.mapped:
                    continue
                if block.segment.expandable:
                    self._unmap(block)
                else:
                    self._release_segment(block)
        return True

    def _release_segment(self, block: _Block) -> bool:
        """`release_block`: cudaFree a cached block that is a whole segment."""
        if block.prev is not None or block.next is not None or block.segment.expandable:
            return False
        pool = block.pool
        del pool.free[bisect_left(pool.free, (block.stream, block.size, block.ptr))]
        del self._at[block.ptr]
        del pool.segments[block.segment.address]
        self._release(pool, block.size)
        return True

    def _unmap(self, block: _Block) -> None:
        """`unmap_block`: unmap the whole pages inside a free block of an expandable
        segment; a segment left with nothing mapped is released."""
        pool, segment = block.pool, block.segment
        page = self._page(pool)
        base, top = block.ptr, block.ptr + block.size
        start = -(-(base - segment.address) // page) * page + segment.address
        end = (top - segment.address) // page * page + segment.address
        if start >= end:
            return
        del pool.free[bisect_left(pool.free, (block.stream, block.size, base))]
        del self._at[base]
        left, right = block.prev, block.next
        if start > base:  # the free bytes before the first whole page stay mapped
            before = _Block(base, start - base, block.stream, pool, segment)
            before.prev = left
            if left is not None:
                left.next = before
            left = before
            self._at[base] = before
            insort(pool.free, (before.stream, before.size, before.ptr))
        if end < top:  # and those after the last
            after = _Block(end, top - end, block.stream, pool, segment)
            after.next = right
            if right is not None:
                right.prev = after
            right = after
            self._at[end] = after
            insort(pool.free, (after.stream, after.size, after.ptr))
        block.ptr, block.size, block.mapped = start, end - start, False
        block.prev, block.next = left, right
        if left is not None:
            left.next = block
        if right is not None:
            right.prev = block
        self._at[start] = block
        self._merge(block, block.prev)
        self._merge(block, block.next)
        insort(pool.unmapped, (block.stream, block.ptr))
        segment.size -= end - start
        self._release(pool, end - start)
        if block.prev is None and block.next is None:
            del pool.unmapped[bisect_left(pool.unmapped, (block.stream, block.ptr))]
            del self._at[block.ptr]
            del pool.segments[segment.address]


def _expandable_size(block: _Block) -> int:
    """The size `block` could reach by mapping the unmapped range after it."""
    following = block.next
    if following is not None and not following.mapped:
        return block.size + following.size
    return block.size
