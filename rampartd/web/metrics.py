"""GET /metrics: Prometheus text format, read from the daemon's state at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rampartd.web.keys import BROADCASTER, SERVICE, STARTED_AT
from rampartd.web.parse import query


class DaemonCollector(Collector):
    """Turns the live state on the app into metrics; nothing is counted twice."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family."""
        app = self.app
        service = app[SERVICE]
        decisions = CounterMetricFamily("rampartd_decisions", "Tool calls answered",
                                        labels=["tool", "action"])
        for (tool, action), count in sorted(service.decided.items()):
            decisions.add_metric([tool, action], count)
        yield decisions
        seq, _ = service.store.head
        yield GaugeMetricFamily("rampartd_audit_head_seq", "Sequence number of the newest "
                                "audit record", value=seq)
        yield GaugeMetricFamily("rampartd_pending_approvals", "Approvals waiting for a person",
                                value=service.approvals.pending_count)
        broadcaster = app[BROADCASTER]
        yield GaugeMetricFamily("rampartd_stream_clients", "Open event streams",
                                value=broadcaster.clients)
        yield CounterMetricFamily("rampartd_stream_overflows", "Times a slow stream client "
                                  "was switched to catch-up from the database",
                                  value=broadcaster.overflow_total)
        current = service.policies.current
        yield GaugeMetricFamily("rampartd_policy_rules", "Rules in the active policy set",
                                value=current.rule_count)
        yield GaugeMetricFamily("rampartd_policy_reload_error", "1 while the last policy edit "
                                "was refused", value=int(service.policies.last_error is not None))
        yield GaugeMetricFamily("rampartd_uptime_seconds", "Seconds since start",
                                value=time.monotonic() - app[STARTED_AT])


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics (admin)."""
    query(request, ())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(request.app))
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
