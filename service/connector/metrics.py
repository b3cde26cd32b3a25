"""Prometheus metrics of one process. Labels carry connector names and outcome words only:
never an ID number, a name, an amount or a verification id.

No `_created` series: they double every counter's series for a timestamp Prometheus does
not need (it sees resets itself).
"""

import functools
from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import disable_created_metrics as _disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from schemas.connector import BreakerState, CallOutcome, HealthStatus

_disable_created_metrics()

BREAKER_VALUE = {BreakerState.closed: 0, BreakerState.half_open: 1, BreakerState.open: 2}

THROTTLE_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)


def _keep_children(metric: MetricWrapperBase) -> None:
    """`metric.labels(...)` answers from a dict after its first call with the same values:
    prometheus_client's own checks the values and takes a lock every time (about 0.7 µs,
    some forty times per household). Correct as long as a child removed is forgotten here
    too: `_remove` does both. (A metric without labels never calls it.)"""
    metric.labels = functools.cache(metric.labels)  # type: ignore[method-assign]


def _remove(metric: MetricWrapperBase, *labels: str) -> None:
    """Remove one series of `metric`, and the child `_keep_children` remembers for it (the
    whole memory: removals are rare, one connector disabled)."""
    metric.remove(*labels)
    metric.labels.cache_clear()  # type: ignore[attr-defined]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter(
            "hedui_connector_calls",
            "Fetches of one source for one household, by how they ended",
            ["connector", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "hedui_connector_call_duration_seconds",
            "Duration of a fetch that reached the partner, retries included",
            ["connector"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.requests = Counter(
            "hedui_connector_requests",
            "HTTP requests sent to partners (attempts, retries and polls), by status class",
            ["connector", "status"],
            registry=r,
        )
        self.retries = Counter(
            "hedui_connector_retries",
            "Requests sent again after a transient failure (polls are not retries), as "
            "granted by the connector's retry budget",
            ["connector"],
            registry=r,
        )
        self.throttle_waits = Counter(
            "hedui_connector_throttle_waits",
            "Partner requests that waited for their turn under the partner's agreed limits, "
            "by the limit that held them (rate, concurrency)",
            ["connector", "limit"],
            registry=r,
        )
        self.throttle_late_turns = Counter(
            "hedui_connector_throttle_late_turns",
            "Partner requests that woke too late for their turn under the agreed rate (a "
            "busy process) and took a new turn instead of going late, bunched with the next",
            ["connector"],
            registry=r,
        )
        self.throttle_wait = Histogram(
            "hedui_connector_throttle_wait_seconds",
            "Time each partner request waited for its turn (agreed rate and concurrency)",
            ["connector"],
            buckets=THROTTLE_BUCKETS_S,
            registry=r,
        )
        self.throttle_starved = Counter(
            "hedui_connector_throttle_starved",
            "Partner requests given up because their turn would have come after their "
            "budget (the source is then timeout), by the limit",
            ["connector", "limit"],
            registry=r,
        )
        self.in_flight = Gauge(
            "hedui_connector_in_flight",
            "Fetches waiting for the partner",
            ["connector"],
            registry=r,
        )
        self.breaker = Gauge(
            "hedui_connector_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ["connector"],
            registry=r,
        )
        self.status = Gauge(
            "hedui_connector_status",
            "The connector's health status (1 for the current one, 0 for the others): "
            "unknown, operational, degraded, down; every process's calls, as on the dashboard",
            ["connector", "status"],
            registry=r,
        )
        self.paused = Gauge(
            "hedui_connector_paused",
            "1 while an operator has paused the connector",
            ["connector"],
            registry=r,
        )
        self.probes = Counter(
            "hedui_connector_probes",
            "Active health checks, by result",
            ["connector", "result"],
            registry=r,
        )
        self.runs_in_flight = Gauge(
            "hedui_verification_runs_in_flight",
            "Verifications being run by this process",
            registry=r,
        )
        self.database_up = Gauge(
            "hedui_database_up",
            "1 when the last scrape read the connector statuses from the database, 0 when "
            "the database could not be reached (the statuses then keep their last values)",
            registry=r,
        )
        self.queue_depth = Gauge(
            "hedui_verification_queue_depth",
            "Verifications stored and waiting to run (not yet claimed by any process), "
            "read from the database at most once a second",
            registry=r,
        )
        self.verifications = Counter(
            "hedui_verifications",
            "Finished verifications, by status and recommendation",
            ["status", "recommendation"],
            registry=r,
        )

        self.shed = Counter(
            "hedui_verification_requests_shed",
            "Verification requests refused before anything was stored, by reason "
            "(saturated, queue_full: 503; rate_limited: 429)",
            ["reason"],
            registry=r,
        )
        self.shown: set[str] = set()
        """Connectors whose gauges (status, breaker, paused, in-flight) are published."""
        for metric in vars(self).values():
            if isinstance(metric, MetricWrapperBase):
                _keep_children(metric)
        self.shed.labels("saturated")
        self.shed.labels("queue_full")
        self.shed.labels("rate_limited")

    def connector(self, name: str) -> None:
        """Make a connector's series exist (at zero) before its first call."""
        self.shown.add(name)
        self.breaker.labels(name).set(0)
        self.paused.labels(name).set(0)
        self.in_flight.labels(name)
        self.retries.labels(name)
        self.throttle_wait.labels(name)
        self.throttle_late_turns.labels(name)
        for outcome in CallOutcome:
            self.calls.labels(name, outcome.value)
        for limit in ("rate", "concurrency"):
            self.throttle_waits.labels(name, limit)
            self.throttle_starved.labels(name, limit)

    def set_breaker(self, name: str, state: BreakerState) -> None:
        self.shown.add(name)
        self.breaker.labels(name).set(BREAKER_VALUE[state])

    def set_paused(self, name: str, paused: bool) -> None:
        self.shown.add(name)
        self.paused.labels(name).set(1 if paused else 0)

    def set_status(self, name: str, current: HealthStatus) -> None:
        self.shown.add(name)
        for status in HealthStatus:
            self.status.labels(name, status.value).set(1 if status is current else 0)

    def show(self, name: str, status: HealthStatus, breaker: BreakerState, paused: bool) -> None:
        """Publish every gauge of a connector in force (again, after it was disabled and
        enabled: its series were removed)."""
        self.set_status(name, status)
        self.set_breaker(name, breaker)
        self.set_paused(name, paused)
        self.in_flight.labels(name)

    def keep_only(self, in_force: Collection[str]) -> None:
        """Remove the gauges of every connector no longer in force (a declarative connector
        disabled since): a status, breaker or pause that is no longer anyone's must not be
        served, or the alert on `status="down"` would fire until a restart. Its in-flight
        gauge goes once its last fetch has ended (one still under way decrements it).

        Counters and histograms stay: they count calls that did happen, and a series
        removed then made again (the connector enabled again) would look like a reset and
        lose what was counted in between; with no more calls, their rates fall to zero."""
        for name in self.shown - set(in_force):
            for status in HealthStatus:
                _remove(self.status, name, status.value)
            _remove(self.breaker, name)
            _remove(self.paused, name)
            if self._in_flight(name):
                continue  # removed at a later scrape
            _remove(self.in_flight, name)
            self.shown.discard(name)

    def _in_flight(self, name: str) -> float:
        for metric in self.in_flight.collect():
            for sample in metric.samples:
                if sample.labels.get("connector") == name:
                    return sample.value
        return 0.0
