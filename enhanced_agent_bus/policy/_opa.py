"""Remote OPA over its REST Data API: ``POST /v1/data/<rule path>`` with ``{"input": ...}``.

In a real deployment the URL points at an OPA server running the same bundle
(``opa run --server --bundle policies/``); the tests stand up a small aiohttp
server on 127.0.0.1 that speaks the same API backed by the embedded engine.
The bus cannot prove the server runs the bundle whose hash keys the decision
cache; keep them in lock-step (deploy the bundle to OPA before the bus loads it).

Why aiohttp directly and not ``opa-python-client``: its ``OpaClient`` is
synchronous (``requests``) and would block the event loop for a whole round
trip per decision. Its ``AsyncOpaClient`` is async, but it builds URLs from
host/port (no base path), has a fixed total timeout and no retries, offers no
pool-size setting, and re-encodes inputs with the stdlib ``json`` even though
the stage already holds the canonical bytes. The decision call is one POST;
doing it here gives a pooled keep-alive session, a per-attempt timeout,
bounded retries with backoff (tenacity), a response-size cap and counted
failure modes. The client library remains a fine choice for uploading
policies and data to OPA, which is not on the message path.

Failure modes, all of which make the stage deny with ``policy_error``:
connection refused / reset and per-attempt timeouts and HTTP 429/5xx are
retried, then raise :class:`PolicyEngineUnavailableError`; other HTTP
statuses, non-JSON bodies, and answers without a well-formed ``result`` raise
:class:`PolicyEvaluationError` at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Final

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ._decision import PolicyDecision
from ._errors import PolicyEngineUnavailableError, PolicyEvaluationError
from ._settings import PolicySettings

logger = logging.getLogger(__name__)

_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_BODY_PREVIEW_CHARS: Final = 200


class _RetryableOpaError(Exception):
    """One failed attempt that another attempt may fix."""


class OpaPolicyEngine:
    """Decides policy inputs with a remote OPA server.

    Example::

        engine = OpaPolicyEngine(PolicySettings(backend="opa", opa_url="http://127.0.0.1:8181"))
        await engine.start()
        decision = await engine.evaluate(canonical_json(policy_input))
        await engine.aclose()
    """

    name: Final = "opa"

    def __init__(self, settings: PolicySettings) -> None:
        if settings.opa_url is None:
            raise PolicyEngineUnavailableError(
                "OpaPolicyEngine needs PolicySettings.opa_url (AGENTBUS_POLICY__OPA_URL)"
            )
        self.endpoint = f"{settings.opa_url.rstrip('/')}/v1/data/{settings.opa_data_path}"
        self._settings = settings
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.opa_token is not None:
            self._headers["Authorization"] = f"Bearer {settings.opa_token.get_secret_value()}"
        self._attempt_timeout = aiohttp.ClientTimeout(total=settings.opa_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.requests = 0
        self.retries = 0
        self.timeouts = 0
        self.connection_errors = 0
        self.http_errors = 0
        self.bad_responses = 0
        self.unavailable = 0

    async def start(self) -> None:
        self._open_session()

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def evaluate(self, input_json: bytes) -> Awaitable[PolicyDecision]:
        return self._evaluate(input_json)

    async def _evaluate(self, input_json: bytes) -> PolicyDecision:
        session = self._open_session()
        body = b'{"input":' + input_json + b"}"
        backoff = self._settings.opa_retry_backoff_s
        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self._settings.opa_retries),
            wait=wait_exponential(multiplier=backoff, max=1.0) + wait_random(0, backoff),
            retry=retry_if_exception_type(_RetryableOpaError),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return await retrying(self._post, session, body)
        except _RetryableOpaError as exc:
            self.unavailable += 1
            raise PolicyEngineUnavailableError(
                f"OPA at {self.endpoint} did not answer after "
                f"{1 + self._settings.opa_retries} attempt(s): {exc}. Check that the server is "
                "up and reachable, or raise opa_timeout_s / opa_retries."
            ) from exc

    async def _post(self, session: aiohttp.ClientSession, body: bytes) -> PolicyDecision:
        self.requests += 1
        try:
            async with session.post(
                self.endpoint, data=body, headers=self._headers, timeout=self._attempt_timeout
            ) as response:
                status = response.status
                raw = await self._read_capped(response)
        except TimeoutError:
            self.timeouts += 1
            raise _RetryableOpaError(
                f"no answer within {self._settings.opa_timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            self.connection_errors += 1
            raise _RetryableOpaError(f"{type(exc).__name__}: {exc}") from None
        if status in _RETRY_STATUSES:
            self.http_errors += 1
            raise _RetryableOpaError(f"HTTP {status}: {_preview(raw)}")
        if status != 200:
            self.http_errors += 1
            raise PolicyEvaluationError(
                f"OPA at {self.endpoint} answered HTTP {status}: {_preview(raw)}. Check the "
                "decision rule path (AGENTBUS_POLICY__DECISION_RULE) and the server's bundle."
            )
        return self._decode(raw)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._settings.opa_max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            self.bad_responses += 1
            raise PolicyEvaluationError(
                f"OPA at {self.endpoint} sent {response.content_length} bytes; at most {limit} "
                "are accepted (opa_max_response_bytes)"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65_536):
            size += len(chunk)
            if size > limit:
                self.bad_responses += 1
                raise PolicyEvaluationError(
                    f"OPA at {self.endpoint} sent more than {limit} bytes (opa_max_response_bytes)"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, raw: bytes) -> PolicyDecision:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.bad_responses += 1
            raise PolicyEvaluationError(
                f"OPA at {self.endpoint} answered with a body that is not JSON: {_preview(raw)}"
            ) from None
        if not isinstance(document, dict):
            self.bad_responses += 1
            raise PolicyEvaluationError(
                f"OPA at {self.endpoint} answered {_preview(raw)}, not an object with 'result'"
            )
        if "result" not in document:
            self.bad_responses += 1
            raise PolicyEvaluationError(
                f"OPA at {self.endpoint} has no value for the decision rule (no 'result'): the "
                "rule is undefined or the server runs another bundle"
            )
        try:
            return PolicyDecision.from_result(document["result"], source=f"OPA {self.endpoint}")
        except PolicyEvaluationError:
            self.bad_responses += 1
            raise

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise PolicyEngineUnavailableError(
                "the OPA engine is closed; build a new policy stage (the bus does this on start "
                "and reload)"
            )
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._settings.opa_pool_size,
                limit_per_host=self._settings.opa_pool_size,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    def _count_retry(self, retry_state: object) -> None:
        self.retries += 1
        logger.debug("retrying OPA decision at %s", self.endpoint)

    def stats(self) -> dict[str, int | float]:
        return {
            "opa_requests": self.requests,
            "opa_retries": self.retries,
            "opa_timeouts": self.timeouts,
            "opa_connection_errors": self.connection_errors,
            "opa_http_errors": self.http_errors,
            "opa_bad_responses": self.bad_responses,
            "opa_unavailable": self.unavailable,
        }


def _preview(raw: bytes) -> str:
    text = raw[: _BODY_PREVIEW_CHARS + 1].decode("utf-8", errors="replace")
    if len(text) > _BODY_PREVIEW_CHARS:
        text = f"{text[:_BODY_PREVIEW_CHARS]}..."
    return repr(text)
