"""Stage 0: admission — payload size and expiry, before any policy work."""

from __future__ import annotations

from datetime import UTC, datetime

from ..models import AgentMessage
from ._stage import ALLOW, StageContext, Verdict


class AdmissionStage:
    """Denies oversize payloads (measured on their orjson encoding) and expired messages."""

    name = "admission"

    def __init__(self, max_payload_bytes: int) -> None:
        self.max_payload_bytes = max_payload_bytes

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        size = message.payload_size_bytes
        if size > self.max_payload_bytes:
            return Verdict.deny(
                self.name,
                "payload_too_large",
                f"payload is {size} bytes, over max_payload_bytes={self.max_payload_bytes}; "
                "send a reference (URL, object key) instead of the data, or raise "
                "AGENTBUS_MAX_PAYLOAD_BYTES",
            )
        expires_at = message.expires_at
        if expires_at is not None and datetime.now(UTC) >= expires_at:
            return Verdict.deny(
                self.name,
                "expired",
                f"message expired at {expires_at.isoformat()}; send a fresh message",
            )
        return ALLOW
