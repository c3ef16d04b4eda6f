"""What an ingestion job says while it embeds: how far, and how long it has left."""

from aift.rag.ingest import _eta


def test_the_time_left_follows_the_rate_so_far() -> None:
    assert _eta(10.0, 32, 64) == " (about 10 s left)"
    assert _eta(60.0, 100, 1000) == " (about 9 min left)"
    assert _eta(0.5, 32, 64) == ""  # too early to tell
    assert _eta(10.0, 64, 64) == ""  # done
