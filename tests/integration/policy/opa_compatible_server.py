"""An OPA-compatible server on 127.0.0.1 (random port), backed by the embedded engine.

It speaks OPA's REST Data API - ``POST /v1/data/<path>`` with ``{"input": ...}``
answers ``{"result": <value>}``, or ``{}`` when the rule is undefined - and
evaluates the constitution's real Rego with regorus, so decisions are real.
In production the URL points at an OPA server. ``mode`` switches it into the
failure behaviours the engine must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from aiohttp import web

from enhanced_agent_bus.constitution import Constitution
from enhanced_agent_bus.policy._embedded import is_policy_module, load_interpreter

Mode = Literal["ok", "hang", "garbage", "no_result", "status_500", "status_400", "huge"]


class OpaCompatibleServer:
    def __init__(self, constitution: Constitution) -> None:
        modules = {
            rel: constitution.read_text(rel) for rel in constitution.files if is_policy_module(rel)
        }
        data_json = constitution.read_text("data.json")
        # Built on the loop thread, used only by handlers on the same thread.
        self._engine: Any = load_interpreter(modules, data_json, origin=str(constitution.path))
        self.mode: Mode = "ok"
        self.fail_next = 0
        self.requests = 0
        self.authorization: list[str | None] = []
        self.release = asyncio.Event()
        self.url = ""

    def close(self) -> None:
        """Drop the regorus engine here, on the loop thread that made it (regorus objects
        freed on another thread - e.g. by a later garbage collection - raise)."""
        self._engine = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.authorization.append(request.headers.get("Authorization"))
        body = await request.read()
        if self.mode == "hang":
            await self.release.wait()
            return web.Response(status=503)
        if self.mode == "garbage":
            return web.Response(body=b"\x00\xffnot json at all", content_type="application/json")
        if self.mode == "no_result":
            return web.json_response({})
        if self.mode == "status_500" or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            return web.json_response({"code": "internal_error", "message": "boom"}, status=500)
        if self.mode == "status_400":
            return web.json_response({"code": "invalid_parameter", "message": "bad"}, status=400)
        if self.mode == "huge":
            return web.Response(body=b'{"result": "' + b"x" * 2_000_000 + b'"}')
        document = orjson.loads(body)
        rule = "data." + request.match_info["path"].replace("/", ".")
        self._engine.set_input_json(orjson.dumps(document.get("input")).decode())
        try:
            value = self._engine.eval_rule(rule)
        except RuntimeError as exc:
            return web.json_response({"code": "internal_error", "message": str(exc)}, status=500)
        if value is None:
            return web.json_response({})
        return web.Response(
            body=orjson.dumps({"result": value}, default=_sets_as_lists),
            content_type="application/json",
        )


def _sets_as_lists(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


@contextlib.asynccontextmanager
async def serving(constitution: Constitution) -> AsyncIterator[OpaCompatibleServer]:
    """An OpaCompatibleServer on 127.0.0.1 (a free port), stopped and released on exit."""
    server = OpaCompatibleServer(constitution)
    app = web.Application()
    app.router.add_post("/v1/data/{path:.+}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()
        server.close()
