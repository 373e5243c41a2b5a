import asyncio

from enhanced_agent_bus import AgentMessage
from enhanced_agent_bus.pipeline import (
    ALLOW,
    Pipeline,
    StageContext,
    ValidationStage,
    Verdict,
    VerdictKind,
)
from enhanced_agent_bus.registry import AgentRecord


class Sync:
    def __init__(self, name: str, verdict: Verdict, log: list[str]) -> None:
        self.name, self.verdict, self.log = name, verdict, log

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        self.log.append(self.name)
        return self.verdict


class Async(Sync):
    async def _later(self) -> Verdict:
        await asyncio.sleep(0)
        return self.verdict

    def check(self, message: AgentMessage, ctx: StageContext) -> asyncio.Future[Verdict]:  # type: ignore[override]
        self.log.append(self.name)
        return asyncio.ensure_future(self._later())


class Broken:
    name = "broken"

    def check(self, message: AgentMessage, ctx: StageContext) -> Verdict:
        raise RuntimeError("engine exploded")


class BrokenLater:
    name = "broken-later"

    async def _fail(self) -> Verdict:
        raise TimeoutError("backend slow")

    def check(self, message: AgentMessage, ctx: StageContext) -> object:
        return self._fail()


async def _handler(message: AgentMessage, context: object) -> None:
    return None


MESSAGE = AgentMessage(from_agent="a", to_agent="b", tenant_id="t")
RECORD = AgentRecord("a", "t", "worker", frozenset(), _handler, None)  # type: ignore[arg-type]
CTX = StageContext(RECORD, RECORD)
DENY = Verdict.deny("x", "nope", "denied by x")
DELIBERATE = Verdict(VerdictKind.DELIBERATE)


def test_sync_stages_never_suspend() -> None:
    log: list[str] = []
    pipeline = Pipeline([Sync("one", ALLOW, log), Sync("two", ALLOW, log)])
    assert pipeline.check(MESSAGE, CTX) is ALLOW
    assert log == ["one", "two"]
    assert pipeline.names == ("one", "two")


def test_first_denial_stops_the_run() -> None:
    log: list[str] = []
    pipeline = Pipeline(
        [Sync("one", ALLOW, log), Sync("two", DENY, log), Sync("three", ALLOW, log)]
    )
    assert pipeline.check(MESSAGE, CTX) is DENY
    assert log == ["one", "two"]


async def test_async_stage_resumes_with_the_rest_in_order() -> None:
    log: list[str] = []
    stages: list[ValidationStage] = [
        Sync("one", ALLOW, log),
        Async("two", ALLOW, log),
        Sync("three", ALLOW, log),
        Async("four", DENY, log),
        Sync("five", ALLOW, log),
    ]
    pending = Pipeline(stages).check(MESSAGE, CTX)
    assert not isinstance(pending, Verdict)
    assert await pending is DENY
    assert log == ["one", "two", "three", "four"]


async def test_deliberate_is_kept_unless_a_later_stage_denies() -> None:
    log: list[str] = []
    assert (
        await Pipeline([Async("d", DELIBERATE, log), Sync("ok", ALLOW, log)]).run(MESSAGE, CTX)
        is DELIBERATE
    )
    assert Pipeline([Sync("d", DELIBERATE, log), Sync("no", DENY, log)]).check(MESSAGE, CTX) is DENY


async def test_a_failing_stage_denies_fail_closed() -> None:
    for stage in (Broken(), BrokenLater()):
        verdict = await Pipeline([stage]).run(MESSAGE, CTX)  # type: ignore[list-item]
        assert verdict.kind is VerdictKind.DENY
        assert verdict.reasons[0].code == "stage_error"
        assert verdict.reasons[0].stage == stage.name
