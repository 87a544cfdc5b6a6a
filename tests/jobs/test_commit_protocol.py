"""The commit protocol (etl_jobs.table) as readers, crashes and concurrent writers see it, on local files in process.

- Readers: DuckDB reads the curated folder after EVERY write and delete of a commit. Each order is visible in its
  version before or after the commit, never in any other; an order that does not change partition is visible once;
  an order that moves is visible once or twice (new partition written first), never zero times.
- Crashes: a load, and a retraction, killed after each of their writes in turn, then run again, end with the same
  table as an uninterrupted run.
- Concurrency: a commit that loses the race for its number merges again on the new state; nothing is lost.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etl_jobs import layout, pipeline, storage
from etl_jobs.engines import get_engine
from etl_jobs.zones import Zones
from tests.support.faults import Crash, after_each_write, crash_after
from tests.support.lakes import read_with_duckdb
from tests.support.scenarios import Delivery, Order

RUN_DATE = date(2024, 5, 4)
FIRST = Delivery(
    "orders",
    "first.csv",
    (
        Order("O1", "2024-05-01T10:00:00Z", "1.00"),
        Order("O2", "2024-05-01T11:00:00Z", "2.00"),
        Order("O3", "2024-05-02T10:00:00Z", "3.00"),
        Order("O4", "2024-05-02T11:00:00Z", "4.00"),
    ),
)
SECOND = Delivery(
    "orders",
    "second.csv",
    (
        Order("O1", "2024-05-03T10:00:00Z", "1.10"),  # moves 05-01 -> 05-03
        Order("O3", "2024-05-04T10:00:00Z", "3.30"),  # moves 05-02 -> 05-04
        Order("O2", "2024-05-01T12:00:00Z", "2.20"),  # updated in place
        Order("O5", "2024-05-04T09:00:00Z", "5.00"),  # new
    ),
)
SHOP = Delivery("shop", "shop.csv", (Order("S1", "2024-05-02T09:00:00Z"), Order("O4", "2024-05-02T12:00:00Z", "4.40")))


def land(zones: Zones, delivery: Delivery) -> None:
    path = Path(zones.raw) / "landing" / delivery.source / delivery.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(delivery.data)


def stage(zones: Zones, *deliveries: Delivery) -> None:
    """Land, extract, transform and validate: everything up to the load."""
    for delivery in deliveries:
        land(zones, delivery)
        pipeline.extract(zones, RUN_DATE, delivery.source)
    pipeline.transform(zones, RUN_DATE)
    pipeline.validate(zones, RUN_DATE, 1.0)


def by_id(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    out = {row[0]: row for row in rows}
    assert len(out) == len(rows), f"an order is held twice: {rows}"
    return out


def watch(zones: Zones, action: Any) -> tuple[list[list[tuple[Any, ...]]], dict[str, tuple[Any, ...]]]:
    """Run `action` reading curated with DuckDB after every write/delete under it; the reads and the end state."""
    curated = Path(zones.curated)
    seen: list[list[tuple[Any, ...]]] = []

    def read(operation: str, uri: str) -> None:
        if uri.startswith(zones.curated):
            seen.append(read_with_duckdb(curated))

    with after_each_write(read):
        action()
    return seen, by_id(read_with_duckdb(curated))


def check_reads(
    seen: list[list[tuple[Any, ...]]], before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]
) -> Counter[str]:
    """The visibility rules of the protocol; returns how often each moving order was seen twice."""
    moving = {i for i in before.keys() & after.keys() if before[i][1] != after[i][1]}
    doubles: Counter[str] = Counter()
    for rows in seen:
        counts = Counter(row[0] for row in rows)
        for row in rows:
            assert row in (before.get(row[0]), after.get(row[0])), f"{row} is neither the old nor the new version"
        for order_id in before.keys() & after.keys():
            assert counts[order_id] >= 1, f"{order_id} vanished during the commit"
            if order_id not in moving:
                assert counts[order_id] == 1, f"{order_id} (not moving) seen {counts[order_id]} times"
            elif counts[order_id] == 2:
                doubles[order_id] += 1
        for order_id in before.keys() ^ after.keys():
            assert counts[order_id] <= 1
    return doubles


def test_readers_between_every_step_of_a_commit(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path))
    stage(zones, FIRST)
    pipeline.load(zones, RUN_DATE)
    before = by_id(read_with_duckdb(Path(zones.curated)))
    stage(zones, SECOND)
    seen, after = watch(zones, lambda: pipeline.load(zones, RUN_DATE))
    assert len(seen) >= 6
    assert {i: r[1] for i, r in after.items()} == {
        "O1": date(2024, 5, 3),
        "O2": date(2024, 5, 1),
        "O3": date(2024, 5, 4),
        "O4": date(2024, 5, 2),
        "O5": date(2024, 5, 4),
    }
    # The new partition of a moving order is written before the old one loses it: seen twice for a moment.
    assert set(check_reads(seen, before, after)) == {"O1", "O3"}

    # A retraction moves orders back to earlier dates: the earlier partition is written first this time.
    seen, restored = watch(zones, lambda: pipeline.retract(zones, "orders/seq=2", RUN_DATE))
    assert restored == before
    assert set(check_reads(seen, after, restored)) == {"O1", "O3"}


def reference(tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    zones = Zones.under(str(tmp_path / "reference"))
    stage(zones, FIRST)
    pipeline.load(zones, RUN_DATE)
    stage(zones, SECOND, SHOP)
    pipeline.load(zones, RUN_DATE)
    return by_id(read_with_duckdb(Path(zones.curated)))


def count_writes(action: Any) -> int:
    done: list[str] = []
    with after_each_write(lambda operation, uri: done.append(uri)):
        action()
    return len(done)


def test_a_load_killed_after_any_write_then_run_again_gives_the_same_table(tmp_path: Path) -> None:
    expected = reference(tmp_path)
    probe = Zones.under(str(tmp_path / "probe"))
    stage(probe, FIRST)
    pipeline.load(probe, RUN_DATE)
    stage(probe, SECOND, SHOP)
    writes = count_writes(lambda: pipeline.load(probe, RUN_DATE))
    assert writes > 10
    for crash_at in range(1, writes + 1):
        zones = Zones.under(str(tmp_path / f"crash-{crash_at}"))
        stage(zones, FIRST)
        pipeline.load(zones, RUN_DATE)
        stage(zones, SECOND, SHOP)
        with pytest.raises(Crash), crash_after(crash_at):
            pipeline.load(zones, RUN_DATE)
        again = pipeline.load(zones, RUN_DATE)
        assert by_id(read_with_duckdb(Path(zones.curated))) == expected, f"crash after write {crash_at}"
        assert pipeline.load(zones, RUN_DATE)["commit"] is None
        # Exactly one commit applied the second day, whoever finished it.
        manifests = [layout.relative(zones.quarantine, u) for u in storage.list_files(zones.quarantine + "_manifests/")]
        assert len(manifests) == 2, (crash_at, manifests, again["commit"])
        assert not storage.list_files(layout.staging_uri(zones, "") + "/")


def test_a_retraction_killed_after_any_write_then_run_again_gives_the_same_table(tmp_path: Path) -> None:
    def prepared(name: str) -> Zones:
        zones = Zones.under(str(tmp_path / name))
        stage(zones, FIRST, SHOP)
        pipeline.load(zones, RUN_DATE)
        stage(zones, SECOND)
        pipeline.load(zones, RUN_DATE)
        return zones

    reference_zones = prepared("reference")
    pipeline.retract(reference_zones, "landing/orders/second.csv", RUN_DATE)
    expected = by_id(read_with_duckdb(Path(reference_zones.curated)))
    probe = prepared("probe")
    writes = count_writes(lambda: pipeline.retract(probe, "landing/orders/second.csv", RUN_DATE))
    assert writes > 8
    for crash_at in range(1, writes + 1):
        zones = prepared(f"crash-{crash_at}")
        with pytest.raises(Crash), crash_after(crash_at):
            pipeline.retract(zones, "landing/orders/second.csv", RUN_DATE)
        pipeline.retract(zones, "landing/orders/second.csv", RUN_DATE)
        assert by_id(read_with_duckdb(Path(zones.curated))) == expected, f"crash after write {crash_at}"


def test_a_commit_that_loses_the_race_merges_again_on_the_new_state(tmp_path: Path) -> None:
    zones = Zones.under(str(tmp_path))
    stage(zones, FIRST, SHOP)
    rival: list[dict[str, Any]] = []
    started: list[bool] = []

    def rival_commits_first(operation: str, uri: str) -> None:
        if "/_staging/" in uri and not started:
            started.append(True)
            rival.append(pipeline.load(zones, RUN_DATE, "shop", engine=get_engine()))

    with after_each_write(rival_commits_first):
        mine = pipeline.load(zones, RUN_DATE, "orders")
    assert (rival[0]["commit"], mine["commit"]) == (1, 2)
    assert [f["name"] for f in rival[0]["files"]] == ["shop.csv"] and [f["name"] for f in mine["files"]] == [
        "first.csv"
    ]
    held = by_id(read_with_duckdb(Path(zones.curated)))
    assert sorted(held) == ["O1", "O2", "O3", "O4", "S1"] and held["O4"][3] == Decimal("4.40")
    assert not storage.list_files(layout.staging_uri(zones, "") + "/")
