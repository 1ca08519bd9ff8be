"""How a step's batch is dealt out to ranks and micro-batches (pure functions)."""

import pytest

from vtp.train.shards import ShardingError, plan_sharding, shard_positions

VTP = {"n_images": 64, "n_plain": 64, "n_clip": 64, "n_ssl": 16, "n_rec": 8}


def test_every_subset_splits_evenly():
    sh = plan_sharding(VTP, world_size=2, micro_batch_size=16)  # 32 a rank, 2 micro-batches of 16
    assert (sh.accumulation, sh.shards) == (2, 4)
    assert (sh.n_clip, sh.n_ssl, sh.n_rec) == (16, 4, 2)
    assert sh.shard(rank=1, micro=1) == 3


def test_one_rank_with_two_micro_batches_deals_like_two_ranks():
    one, two = plan_sharding(VTP, world_size=1, micro_batch_size=32), plan_sharding(VTP, world_size=2)
    assert [one.shard(0, j) for j in range(2)] == [two.shard(r, 0) for r in range(2)]
    assert one.counts == two.counts


def test_positions_deal_prefixes_to_every_shard():
    shards = [shard_positions(8, s, 4) for s in range(4)]
    assert shards == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert sorted(p for s in shards for p in s) == list(range(8))
    assert all(s[0] < 4 for s in shards)  # the prefix of 4 gives each shard its first position


def test_uneven_split_says_which_subset_and_how_to_fix_it():
    with pytest.raises(ShardingError, match=r"= 16 shards; n_rec.*micro_batch_size"):
        plan_sharding(VTP, world_size=8, micro_batch_size=4)  # n_rec 8 over 16 shards does not split
    with pytest.raises(ShardingError, match="n_rec"):
        plan_sharding(VTP, world_size=16)
