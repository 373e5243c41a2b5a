"""The HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on an aiohttp server.

The server runs on the bus's event loop, and so does rendering ``/metrics``:
the stats collector and health probes read component state that only the loop
mutates, so they see it consistently without locks. Rendering is pure Python
under the GIL, so a thread would not shorten the stall: measured here, a
500-line exposition holds the loop ~5 ms inline and the loop still saw ~5 ms
gaps with ``asyncio.to_thread`` (the GIL switch interval). A typical bus
(~300 lines) renders in ~1.8 ms (``benchmarks/bench_metrics.py``), once per
scrape interval.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import orjson
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from ..errors import BusStateError, ConfigurationError
from ._health import HealthAggregator

if TYPE_CHECKING:
    from ._metrics import BusMetrics

logger = logging.getLogger(__name__)

_INDEX: Final = (
    b"enhanced-agent-bus\n/metrics  Prometheus exposition\n"
    b"/healthz  liveness\n/readyz   readiness (JSON)\n"
)


class MetricsServer:
    """Serves one bus's metrics and health over HTTP.

    Args:
        metrics: the bus's :class:`BusMetrics` (its registry is what ``/metrics`` shows).
        health: readiness source for ``/readyz``; None reports healthy with no components.
        host: interface to bind; keep the loopback default unless a remote scraper needs it.
        port: TCP port; 0 picks a free one (read it back from :attr:`port` after ``start``).

    Example::

        server = MetricsServer(metrics, health, port=9464)
        await server.start()
        ...
        await server.aclose()
    """

    def __init__(
        self,
        metrics: BusMetrics,
        health: HealthAggregator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0 <= port <= 65_535:
            raise ConfigurationError(f"metrics port {port!r} is not in 0..65535 (0 = any free)")
        self._metrics = metrics
        self._health = health
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.requests_total = 0

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            BusStateError: before :meth:`start`.
        """
        if self._port is None:
            raise BusStateError("the metrics server is not running; await start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            BusStateError: if already started.
            ConfigurationError: if the address cannot be bound (port in use, bad host).
        """
        if self._runner is not None:
            raise BusStateError("the metrics server is already running; aclose() it first")
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_liveness)
        app.router.add_get("/readyz", self._serve_readiness)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigurationError(
                f"cannot serve metrics on {self._host}:{self._requested_port}: {exc.strerror}. "
                "Pick another port (0 = any free port) or stop whatever holds it."
            ) from exc
        self._runner = runner
        self._port = _bound_port(runner, self._requested_port)
        logger.info("metrics endpoint listening on %s", self.url)

    async def aclose(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    def stats(self) -> dict[str, int | float]:
        """``scrapes``: /metrics requests served; ``running``: 1 while listening."""
        return {"scrapes": self.requests_total, "running": int(self._runner is not None)}

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=_INDEX, content_type="text/plain")

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        self.requests_total += 1
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self._metrics.registry)
        # content_type carries parameters (version, charset); aiohttp wants them in the header.
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _serve_liveness(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _serve_readiness(self, request: web.Request) -> web.Response:
        if self._health is None:
            body: dict[str, object] = {"status": "healthy", "reasons": [], "components": {}}
            status = 200
        else:
            report = self._health.report()
            body = report.to_dict()
            status = 200 if report.is_ready else 503
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6.
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
            return address[1]
    if requested:
        return requested
    raise ConfigurationError("the metrics server bound no TCP socket; check the host name")
