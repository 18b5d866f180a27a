"""``GET /metrics``: the server in Prometheus' text format (Ollama has none: its issues #3144, #12467).

Every label is bounded: a route is the route's template (``/v1/models/{model}``; a path that matches no route
is ``unmatched``), a model is the name of a model in the store (resolved before anything is counted, so a
client cannot make up label values), a status is an HTTP status.

Requests are counted and timed where they are answered (the request log's place, ``corral.server.app``);
generation figures where the runner's messages pass (``corral.server.core.generation``); what the scheduler
knows (loaded runners, their memory, queues, loads, unloads, evictions, crashes) is read from it when the
metrics are scraped, so the scheduler stays free of Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

if TYPE_CHECKING:
    from corral.scheduler.scheduler import Scheduler

__all__ = ["Metrics", "metrics_endpoint", "route_of"]

# seconds: from a millisecond (a 404) to ten minutes (a long generation, a pull)
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RATE_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000)


def route_of(scope: Scope) -> str:
    """The template of the route that answered (bounded), not the path a client wrote."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class _SchedulerCollector(Collector):
    """What the scheduler holds, read at scrape time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        sched = self.scheduler
        loaded = GaugeMetricFamily("corral_loaded_models", "Runners loaded, one per model and load options.")
        loaded.add_metric([], len(sched.loaded))
        yield loaded
        memory = GaugeMetricFamily("corral_model_memory_bytes", "Estimated memory of a model's loaded runners.",
                                   labels=["model"])
        runners = GaugeMetricFamily("corral_model_runners", "Loaded runners of a model.", labels=["model"])
        by_model: dict[str, tuple[int, int]] = {}
        for entry in sched.loaded.values():
            size, count = by_model.get(entry.model.name, (0, 0))
            by_model[entry.model.name] = (size + entry.size, count + 1)
        for name, (size, count) in sorted(by_model.items()):
            memory.add_metric([name], size)
            runners.add_metric([name], count)
        yield memory
        yield runners
        queue = GaugeMetricFamily("corral_queue_depth", "Requests of a model waiting for its load or a slot.",
                                  labels=["model"])
        for name, depth in sorted(sched.queue_depths().items()):
            queue.add_metric([name], depth)
        yield queue
        stats = sched.stats
        for metric, counts, text in (
                ("corral_model_loads", stats.loads, "Runners started for a model."),
                ("corral_model_unloads", stats.unloads, "Runners stopped: keep-alive ended, reload, request."),
                ("corral_model_evictions", stats.evictions, "Runners stopped to make room for another."),
                ("corral_runner_crashes", stats.crashes, "Runners that ended on their own.")):
            family = CounterMetricFamily(metric, text, labels=["model"])
            for name, n in sorted(counts.items()):
                family.add_metric([name], n)
            yield family


class Metrics:
    """The server's metrics, in a registry of its own (one per server, not the process-global one)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("corral_requests", "HTTP requests answered, by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("corral_request_duration_seconds",
                                 "Time from a request's arrival to the end of its answer (whole streams).",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("corral_time_to_first_token_seconds",
                              "Time from a generation request's arrival to its first token (loads included).",
                              ["model"], buckets=TTFT_BUCKETS, registry=r)
        self.prompt_tokens = Counter("corral_prompt_tokens", "Prompt tokens of requests (cached prefix included).",
                                     ["model"], registry=r)
        self.generated_tokens = Counter("corral_generated_tokens", "Tokens generated.", ["model"], registry=r)
        self.decode_rate = Histogram("corral_generation_tokens_per_second",
                                     "Each generation's decode speed (generated tokens over their time).",
                                     ["model"], buckets=RATE_BUCKETS, registry=r)
        self.queue_wait = Histogram("corral_queue_wait_seconds",
                                    "Time a request waited for its model's load and for a slot of its runner.",
                                    ["model"], buckets=QUEUE_BUCKETS, registry=r)
        r.register(_SchedulerCollector(scheduler))

    def request(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_of(scope)
        self.requests.labels(route, str(scope.get("method", "")), str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def generated(self, model: str, *, prompt_tokens: int, tokens: int, eval_ns: int, queue_s: float) -> None:
        self.prompt_tokens.labels(model).inc(prompt_tokens)
        self.generated_tokens.labels(model).inc(tokens)
        if tokens > 0 and eval_ns > 0:
            self.decode_rate.labels(model).observe(tokens / (eval_ns / 1e9))
        self.queue_wait.labels(model).observe(queue_s)

    def embedded(self, model: str, *, prompt_tokens: int, queue_s: float) -> None:
        self.prompt_tokens.labels(model).inc(prompt_tokens)
        self.queue_wait.labels(model).observe(queue_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    from corral.server.state import state_of

    return Response(state_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
