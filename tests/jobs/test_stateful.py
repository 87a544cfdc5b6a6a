"""Random sequences of land / re-deliver / run / re-run / crash at a commit step / two runs at once / retract, in
process on local files, with the invariant: curated == the fold of every accepted, unretracted row by version order
(`tests.support.scenarios.Model`), checked after every step that completes.

Time budget: 100 examples of up to 15 steps, about 10-30 s on this 2-core machine (polars engine). Runs each
registered engine; an engine whose every stage costs Spark jobs runs fewer, shorter sequences (`BUDGET`: Spark's
scenario suite, hostile corpus and parity tests carry the rest), within the Spark budget of tests/jobs/test_spark_engine.py."""

from __future__ import annotations

import tempfile
import threading
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from etl_jobs import pipeline
from etl_jobs.engines import available, get_engine
from etl_jobs.zones import Zones
from tests.support.faults import Crash, crash_after
from tests.support.lakes import read_with_duckdb
from tests.support.scenarios import Delivery, Model, Order
from tests.support.spark import local_session

RUN_DATE = date(2024, 5, 4)
IDS = [f"O{i}" for i in range(6)]
ORDERS = st.builds(
    Order,
    order_id=st.sampled_from(IDS),
    order_ts=st.sampled_from(
        ["2024-05-01T10:00:00Z", "2024-05-01T12:00:00Z", "2024-05-02T10:00:00Z", "2024-05-03T08:00:00Z"]
    ),
    amount=st.sampled_from(["1.00", "2.00", "3.00"]),
)


class Lakes(RuleBasedStateMachine):
    engine_name = "polars"

    @initialize()
    def start(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.zones = Zones.under(self.tmp.name)
        if self.engine_name == "spark":
            local_session()  # the test session's SparkSession, before the engine takes the active one
        self.engine = get_engine(self.engine_name)
        self.model = Model()
        self.delivered: list[Delivery] = []
        self.names = 0
        self.consistent = True

    def teardown(self) -> None:
        self.tmp.cleanup()

    def _land(self, delivery: Delivery) -> None:
        path = Path(self.zones.raw) / "landing" / delivery.source / delivery.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(delivery.data)
        self.model.land(delivery)
        self.delivered.append(delivery)

    def _run(self) -> dict[str, Any]:
        for source in ("orders", "shop"):
            pipeline.extract(self.zones, RUN_DATE, source)
        pipeline.transform(self.zones, RUN_DATE, engine=self.engine)
        pipeline.validate(self.zones, RUN_DATE, 1.0, engine=self.engine)
        return pipeline.load(self.zones, RUN_DATE, engine=self.engine)

    @rule(source=st.sampled_from(["orders", "shop"]), orders=st.lists(ORDERS, min_size=0, max_size=4))
    def land(self, source: str, orders: list[Order]) -> None:
        self.names += 1
        outcome = "accepted" if orders else "empty"
        self._land(Delivery(source, f"f{self.names:03d}.csv", tuple(orders), outcome=outcome))

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data(), same_name=st.booleans())
    def redeliver(self, data: st.DataObject, same_name: bool) -> None:
        original = data.draw(st.sampled_from(self.delivered))
        self.names += 1
        name = original.name if same_name else f"f{self.names:03d}.csv"
        self._land(Delivery(original.source, name, original.lines, outcome=original.outcome))

    @rule()
    def run(self) -> None:
        self.model.claim()
        self._run()
        self.consistent = True

    @rule()
    def rerun(self) -> None:
        self.model.claim()
        self._run()
        assert self._run()["commit"] is None  # a second run right after changes nothing
        self.consistent = True

    @rule(writes=st.integers(min_value=1, max_value=25))
    def crash_during_commit(self, writes: int) -> None:
        self.model.claim()
        for source in ("orders", "shop"):
            pipeline.extract(self.zones, RUN_DATE, source)
        pipeline.transform(self.zones, RUN_DATE, engine=self.engine)
        pipeline.validate(self.zones, RUN_DATE, 1.0, engine=self.engine)
        try:
            with crash_after(writes):
                pipeline.load(self.zones, RUN_DATE, engine=self.engine)
        except Crash:
            self.consistent = False
        else:
            self.consistent = True

    @rule()
    def two_runs_at_once(self) -> None:
        self.model.claim()
        errors: list[BaseException] = []

        def one() -> None:
            try:
                self._run()
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        self.consistent = True

    @precondition(lambda self: any(self.model.ledgers.values()))
    @rule(data=st.data())
    def retract(self, data: st.DataObject) -> None:
        claimed = [(s, c) for s, ledger in self.model.ledgers.items() for c in ledger if not c.retracted]
        if not claimed:
            return
        source, entry = data.draw(st.sampled_from(claimed))
        pipeline.retract(self.zones, f"{source}/seq={entry.seq}", RUN_DATE, engine=self.engine)
        entry.retracted = True
        # Consistent as before: deliveries a crashed load left pending wait for the next load, not for a retraction.

    @invariant()
    def curated_is_the_fold(self) -> None:
        if self.consistent:
            assert read_with_duckdb(Path(self.zones.curated)) == self.model.curated()


# (examples, steps) per engine; every other engine runs the default.
BUDGET = {"spark": (3, 8)}
DEFAULT_BUDGET = (100, 15)


def _case(engine: str) -> type:
    machine = type(f"Lakes_{engine}", (Lakes,), {"engine_name": engine})
    examples, steps = BUDGET.get(engine, DEFAULT_BUDGET)
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    return machine.TestCase


for _engine in available():
    globals()[f"TestLakes_{_engine}"] = _case(_engine)
