"""The caching allocator simulation against the policy of PyTorch's source, worked by hand.

Each sequence's reserved and allocated bytes follow from the rules quoted in
`memflops.memory.allocator`'s docstring; the arithmetic is in the comments.
MiB = 2**20 B. No torch needed: the simulation is pure Python.
"""

from __future__ import annotations

import pytest

from memflops.errors import UsageError
from memflops.memory.allocator import (
    AllocatorConfig,
    CachingAllocator,
    OutOfMemory,
    roundup_power2_next_division,
)

MiB = 2**20
EXPANDABLE = AllocatorConfig(expandable_segments=True)


def test_small_pool_packs_requests_into_2_mib_segments() -> None:
    alloc = CachingAllocator()
    alloc.malloc("a", 1000)  # rounded to 2 x 512 = 1024 B; no free block: a 2 MiB segment
    alloc.malloc("b", 1)  # at least 512 B, cut from the same segment's free rest
    alloc.malloc("c", 1 * MiB)  # 1 MiB is still small (<= kSmallSize): rest 2 MiB - 1536 fits
    assert alloc.stats.reserved == 2 * MiB
    assert alloc.stats.allocated == 1024 + 512 + MiB  # 1,050,112
    # The rest is 2 MiB - 1024 - 512 - 1 MiB = 1,047,040 B < 1 MiB: a second segment.
    alloc.malloc("d", 1 * MiB)
    assert alloc.stats.reserved == 4 * MiB
    assert [(s.pool, s.size, s.allocated) for s in alloc.segments()] == [
        ("small", 2 * MiB, 1024 + 512 + MiB),
        ("small", 2 * MiB, MiB),
    ]
    assert alloc.stats.requested == 1000 + 1 + 2 * MiB  # what was asked, unrounded


def test_a_20_mib_segment_is_split_and_reused() -> None:
    alloc = CachingAllocator()
    alloc.malloc("a", 3 * MiB)  # 1-10 MiB: a 20 MiB segment; a takes [0, 3), 17 MiB rest
    alloc.malloc("b", 5 * MiB)  # best fit: the 17 MiB rest; b takes [3, 8), 12 MiB rest
    alloc.malloc("c", 12 * MiB)  # exactly the 12 MiB rest: no new segment, nothing left over
    assert alloc.stats.reserved == 20 * MiB
    assert alloc.stats.allocated == 20 * MiB
    alloc.free("b")  # [3, 8) free; its neighbours a and c are in use: no merge
    # 4 MiB takes the 5 MiB block; the 1 MiB rest is not more than kSmallSize, so the
    # large-pool block is not split: d holds all 5 MiB.
    alloc.malloc("d", 4 * MiB)
    assert alloc.stats.reserved == 20 * MiB
    assert alloc.stats.allocated == 3 * MiB + 5 * MiB + 12 * MiB  # 20 MiB in use
    assert alloc.stats.requested == 3 * MiB + 4 * MiB + 12 * MiB  # 19 MiB asked for
    assert len(alloc.segments()) == 1


def test_two_frees_in_different_segments_cannot_merge() -> None:
    alloc = CachingAllocator()
    alloc.malloc("a", 12 * MiB)  # >= 10 MiB: a segment of its size rounded to 2 MiB: 12 MiB
    alloc.malloc("b", 12 * MiB)  # a second 12 MiB segment
    alloc.free("a")
    alloc.free("b")  # 24 MiB free, in two 12 MiB segments that never merge
    alloc.malloc("c", 20 * MiB)  # no free block holds 20 MiB: a third segment
    assert alloc.stats.reserved == 12 * MiB + 12 * MiB + 20 * MiB  # 44 MiB
    assert alloc.stats.allocated == 20 * MiB
    # The gap is exactly the two idle segments.
    assert sum(s.size - s.allocated for s in alloc.segments()) == 24 * MiB


def test_the_same_sequence_with_expandable_segments() -> None:
    alloc = CachingAllocator(EXPANDABLE)
    # One large-pool segment that grows in 20 MiB pages.
    alloc.malloc("a", 12 * MiB)  # maps 1 page: [0, 20); a takes [0, 12), [12, 20) free
    alloc.malloc("b", 12 * MiB)  # 8 MiB free at the end: maps 1 more page, [12, 40) free;
    # b takes [12, 24)
    assert alloc.stats.reserved == 40 * MiB
    alloc.free("a")
    alloc.free("b")  # a, b and the tail merge: [0, 40) free, one block
    alloc.malloc("c", 20 * MiB)  # fits in it: nothing new mapped
    assert alloc.stats.reserved == 40 * MiB  # against 44 MiB without expandable segments
    assert alloc.stats.allocated == 20 * MiB
    assert [(s.size, s.allocated, s.expandable) for s in alloc.segments()] == [
        (40 * MiB, 20 * MiB, True)
    ]


def test_expandable_small_pool_grows_in_2_mib_pages() -> None:
    alloc = CachingAllocator(EXPANDABLE)
    for i in range(3):
        alloc.malloc(i, MiB)  # 3 x 1 MiB small requests: 2 pages of 2 MiB, one segment
    assert alloc.stats.reserved == 4 * MiB
    assert len(alloc.segments()) == 1
    # Without expandable segments: 2 per 2 MiB segment, 2 segments, the same 4 MiB.
    plain = CachingAllocator()
    for i in range(3):
        plain.malloc(i, MiB)
    assert plain.stats.reserved == 4 * MiB
    assert len(plain.segments()) == 2


def test_max_split_size_keeps_small_requests_out_of_large_cached_blocks() -> None:
    alloc = CachingAllocator(AllocatorConfig.parse("max_split_size_mb:20"))
    alloc.malloc("a", 30 * MiB)  # >= 10 MiB: a 30 MiB segment
    alloc.free("a")  # cached; 30 MiB >= max_split_size (20 MiB)
    # 4 MiB < 20 MiB may not take a block >= 20 MiB: a new 20 MiB segment, split (4 MiB is
    # under max_split_size and the 16 MiB rest is over 1 MiB): b holds 4 MiB of it.
    alloc.malloc("b", 4 * MiB)
    # 24 MiB >= max_split_size may take a block less than 24 + 20 MiB (max_non_split_rounding)
    # larger: the cached 30 MiB block, whole (a request that large is never split off).
    alloc.malloc("c", 24 * MiB)
    assert alloc.stats.allocated == 4 * MiB + 30 * MiB
    assert alloc.stats.reserved == 30 * MiB + 20 * MiB
    # Without the option b splits the cached block ([0, 4), 26 MiB rest) and c splits the
    # rest ([4, 28), the 2 MiB left is over 1 MiB): 30 MiB reserved, 28 MiB in use.
    plain = CachingAllocator()
    plain.malloc("a", 30 * MiB)
    plain.free("a")
    plain.malloc("b", 4 * MiB)
    plain.malloc("c", 24 * MiB)
    assert plain.stats.reserved == 30 * MiB
    assert plain.stats.allocated == 28 * MiB


def test_roundup_power2_divisions() -> None:
    # 1200 B in 4 divisions of [1024, 2048): 1024, 1280, 1536, 1792 -> 1280 (the source's
    # own example) ...
    assert roundup_power2_next_division(1200, 4) == 1280
    # ... but round_size only uses divisions above 512 x divisions = 2048 B: 1200 -> 1536.
    config = AllocatorConfig.parse("roundup_power2_divisions:4")
    assert config.round_size(1200) == 1536
    # 5 MiB + 1 B in 4 divisions of [4, 8) MiB: steps of 1 MiB -> 6 MiB.
    assert config.round_size(5 * MiB + 1) == 6 * MiB
    assert AllocatorConfig().round_size(5 * MiB + 1) == 5 * MiB + 512  # default: 512 B steps
    # Per interval: [256 MiB, 512 MiB) and below 1, [512 MiB, 1 GiB) 2, 1 GiB and up 4.
    listed = AllocatorConfig.parse("roundup_power2_divisions:[256:1,512:2,>:4]")
    assert listed.round_size(300 * MiB + 1) == 300 * MiB + 512  # 1 division: plain rounding
    assert listed.round_size(600 * MiB) == 768 * MiB  # steps of 512 / 2 = 256 MiB
    assert listed.round_size(1536 * MiB + 1) == 1792 * MiB  # steps of 1024 / 4 = 256 MiB
    # In the allocator: a 5 MiB + 1 B request holds a 6 MiB block of its 20 MiB segment.
    alloc = CachingAllocator(config)
    alloc.malloc("a", 5 * MiB + 1)
    assert alloc.stats.allocated == 6 * MiB


def test_best_fit_takes_the_smallest_free_block_and_the_lowest_address_on_a_tie() -> None:
    alloc = CachingAllocator()
    for key in ("a", "b", "c"):
        alloc.malloc(key, 12 * MiB)  # three 12 MiB segments at rising addresses
    alloc.malloc("big", 16 * MiB)
    for key in ("c", "big", "a"):
        alloc.free(key)
    alloc.malloc("d", 12 * MiB)  # 12 MiB blocks at a and c, 16 MiB at big: a's (lowest)
    alloc.malloc("e", 12 * MiB)  # then c's, not the 16 MiB block
    in_use = [s.size for s in alloc.segments() if s.allocated]
    assert in_use == [12 * MiB, 12 * MiB, 12 * MiB]  # a, b, c in use; big idle
    assert alloc.stats.reserved == 3 * 12 * MiB + 16 * MiB


def test_blocks_of_one_stream_are_not_reused_by_another() -> None:
    alloc = CachingAllocator()
    alloc.malloc("a", 1000, stream=1)
    alloc.free("a")
    alloc.malloc("b", 1000, stream=2)  # stream 1's cached 2 MiB segment is not for stream 2
    assert alloc.stats.reserved == 4 * MiB


def test_a_full_cache_is_released_and_the_request_retried() -> None:
    alloc = CachingAllocator(capacity=40 * MiB)
    alloc.malloc("a", 12 * MiB)
    alloc.malloc("b", 12 * MiB)
    alloc.free("a")
    alloc.free("b")
    # 24 + 20 = 44 MiB > 40: the two idle segments are freed, then the 20 MiB fits.
    alloc.malloc("c", 20 * MiB)
    assert alloc.stats.reserved == 20 * MiB
    assert alloc.stats.reserved_peak == 24 * MiB
    assert alloc.stats.num_alloc_retries == 1
    # A block in use cannot be released: 20 + 24 > 40 MiB.
    with pytest.raises(OutOfMemory):
        alloc.malloc("d", 24 * MiB)


def test_expandable_segments_unmap_free_pages_when_full() -> None:
    alloc = CachingAllocator(EXPANDABLE, capacity=60 * MiB)
    alloc.malloc("a", 45 * MiB)  # 3 pages of 20 MiB: 60 MiB mapped
    alloc.free("a")  # all 60 MiB free
    # 50 MiB fits in the free 60 MiB: no mapping needed.
    alloc.malloc("b", 50 * MiB)
    assert alloc.stats.reserved == 60 * MiB
    alloc.free("b")
    alloc.malloc("c", 5 * MiB, stream=1)  # another stream: its own segment needs a page:
    # 60 + 20 > 60 MiB: the free pages of stream 0's segment are unmapped (all 3), then
    # stream 1's page is mapped.
    assert alloc.stats.reserved == 20 * MiB
    assert alloc.stats.num_alloc_retries == 1
    assert [(s.size, s.allocated) for s in alloc.segments()] == [(20 * MiB, 5 * MiB)]


def test_freed_neighbours_merge_within_a_segment() -> None:
    alloc = CachingAllocator()
    for key in "abc":
        alloc.malloc(key, 4 * MiB)  # one 20 MiB segment: a, b, c, then 8 MiB free
    alloc.free("a")
    alloc.free("c")  # merges with the 8 MiB tail: 12 MiB free
    alloc.free("b")  # merges with both: the whole 20 MiB free again
    alloc.malloc("d", 18 * MiB)  # >= 10 MiB, fits the merged 20 MiB block: no new segment
    assert alloc.stats.reserved == 20 * MiB


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("expandable_segment:True", "did you mean expandable_segments"),
        ("max_split_size_mb:10", "at least 20"),
        ("expandable_segments:true", "True or False"),
        ("roundup_power2_divisions:3", "not a power of two"),
        ("backend:cudaMallocAsync", "not simulated"),
        ("max_split_size_mb", "max_split_size_mb:VALUE"),
    ],
)
def test_bad_option_strings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        AllocatorConfig.parse(text)


def test_option_strings_as_pytorch_reads_them() -> None:
    config = AllocatorConfig.parse(
        " expandable_segments:True, max_split_size_mb:256,max_non_split_rounding_mb:64,"
        "garbage_collection_threshold:0.6 "
    )
    assert config.expandable_segments
    assert config.max_split_size == 256 * MiB
    assert config.max_non_split_rounding == 64 * MiB
    assert AllocatorConfig.parse(None) == AllocatorConfig()
    listed = AllocatorConfig.parse("roundup_power2_divisions:[64:8,>:2]")
    # intervals from 1 MiB up to and including [64, 128) MiB: 8; from 128 MiB on: 2
    assert listed.roundup_power2_divisions == (8,) * 7 + (2,) * 9
