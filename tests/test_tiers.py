"""The tiers (tests/conftest.py, README "Tests"): every test file has one, every test gets exactly
one tier marker, a fast-file test that reads the tiny pipeline is a pipeline test, and the fast
tier holds at least half of the tests."""

from __future__ import annotations

from collections import Counter

import pytest

from conftest import COLLECTED_TIERS, FILE_TIERS, REPO, TIERS, tier_of


def test_every_test_file_has_a_tier_and_every_tier_of_the_table_is_one_of_three():
    on_disk = {p.name for p in (REPO / "tests").glob("test_*.py")}
    assert on_disk == set(FILE_TIERS), (on_disk - set(FILE_TIERS), set(FILE_TIERS) - on_disk)
    assert set(FILE_TIERS.values()) == set(TIERS)


def test_every_collected_test_has_exactly_one_tier_marker(request):
    tiers = request.config.stash[COLLECTED_TIERS]
    assert request.node.nodeid in tiers
    for item in request.session.items:
        marks = [m.name for m in item.iter_markers() if m.name in TIERS]
        assert marks == [tiers[item.nodeid]], (item.nodeid, marks)


def test_the_fast_tier_holds_at_least_half_of_the_tests(request):
    """Counted over every collected test, also under `-m fast` (the tiers are set before `-m`
    deselects); meaningful when the whole suite is collected, as by `make test-fast`."""
    counts = Counter(request.config.stash[COLLECTED_TIERS].values())
    assert counts["fast"] >= sum(counts.values()) / 2, counts


def test_the_tier_comes_from_the_file_and_the_tiny_pipeline_makes_a_pipeline_test():
    assert tier_of("test_layers.py", ["tmp_path"]) == "fast"
    assert tier_of("test_report.py", ["tiny_pipeline", "tmp_path"]) == "pipeline"
    assert tier_of("test_report_browser.py", ["tiny_pipeline"]) == "system"
    assert tier_of("test_slurm.py", []) == "system"
    with pytest.raises(pytest.UsageError, match="test_new.py has no tier: add it to FILE_TIERS"):
        tier_of("test_new.py", [])
