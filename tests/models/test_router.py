"""Routing by task class and sensitivity, INV-3 at start-up, and the guard hook's effect."""

from __future__ import annotations

import pytest

from tether.errors import (
    ConfigurationError,
    CrossFamilyJudgeError,
    ModelError,
    ModelRetryableError,
    PolicyDenied,
    RateLimited,
)
from tether.foundation.models.backends.scripted import ScriptedBackend
from tether.foundation.models.config import RoutingTable, build_table
from tether.foundation.models.contract import (
    Message,
    ModelRequest,
    Route,
    RouteAttempt,
    Sensitivity,
)
from tether.foundation.models.router import ModelRouter
from tether.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _request(task: str = "agent", sensitivity: Sensitivity = Sensitivity.INTERNAL) -> ModelRequest:
    return ModelRequest(task_class=task, messages=[Message.user("hello")], sensitivity=sensitivity)


def _route(backend: str, family: str = "f") -> Route:
    return Route(backend=backend, model=f"{backend}-model", family=f"{backend}-{family}")


async def _no_sleep(_: float) -> None:
    return None


def test_default_settings_route_every_task_class_to_the_offline_models() -> None:
    router = ModelRouter.from_settings(Settings(model_backends={}, model_routes={}))
    assert [r.backend for r in router.plan("agent", Sensitivity.RESTRICTED)] == ["local"]
    assert router.plan("cheap_classify", Sensitivity.PUBLIC)[0].model == "tfidf-logreg"
    assert router.plan("anything_else", Sensitivity.PUBLIC)[0].model == "rules-agent"


async def test_default_router_answers_offline_with_the_local_classifier() -> None:
    router = ModelRouter.from_settings(Settings(model_backends={}, model_routes={}))
    request = ModelRequest(
        task_class="cheap_classify", messages=[Message.user("the whole site is down for everyone")]
    )
    routed = await router.complete(request)
    assert routed.response.text == "outage"
    assert routed.decision.family == "local-sklearn"


def test_judge_sharing_the_agents_family_fails_at_start_up() -> None:
    settings = Settings(
        model_routes={
            "agent": [{"backend": "local", "model": "rules-agent", "family": "claude"}],
            "judge": [{"backend": "local", "model": "rubric-judge", "family": "claude"}],
        }
    )
    with pytest.raises(CrossFamilyJudgeError, match="claude"):
        ModelRouter.from_settings(settings)


def test_a_judge_fallback_in_the_agents_family_also_breaks_inv3() -> None:
    routes = {
        "agent:restricted": [{"backend": "local", "model": "rules-agent", "family": "gpt"}],
        "judge": [
            {"backend": "a", "model": "m", "family": "claude"},
            {"backend": "b", "model": "m", "family": "gpt"},
        ],
    }
    with pytest.raises(CrossFamilyJudgeError, match="gpt"):
        build_table(routes)


def test_a_sensitivity_outside_the_three_levels_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="sensitivity must be one of"):
        build_table({"agent:secret": [{"backend": "local", "model": "m", "family": "x"}]})


async def test_sensitivity_key_overrides_the_task_class_route() -> None:
    table = RoutingTable(routes={"agent": (_route("hosted"),), "agent:public": (_route("cheap"),)})
    hosted, cheap = ScriptedBackend(["hosted"]), ScriptedBackend(["cheap"])
    router = ModelRouter(table, {"hosted": hosted, "cheap": cheap})
    assert (
        await router.complete(_request(sensitivity=Sensitivity.PUBLIC))
    ).response.text == "cheap"
    assert (await router.complete(_request())).response.text == "hosted"


async def test_restricted_data_never_reaches_a_backend_not_approved_for_it() -> None:
    hosted = ScriptedBackend([ModelRetryableError("down", status=500)])
    onprem = ScriptedBackend(["on-prem answer"], restricted_ok=True)
    table = RoutingTable(routes={"agent": (_route("hosted"), _route("onprem"))})
    router = ModelRouter(table, {"hosted": hosted, "onprem": onprem})

    routed = await router.complete(_request(sensitivity=Sensitivity.RESTRICTED))

    assert routed.response.text == "on-prem answer"
    assert hosted.requests == []
    assert [r.backend for r in router.plan("agent", Sensitivity.RESTRICTED)] == ["onprem"]


async def test_restricted_call_with_no_approved_route_is_refused_before_any_call() -> None:
    hosted = ScriptedBackend(["never"])
    router = ModelRouter(RoutingTable(routes={"agent": (_route("hosted"),)}), {"hosted": hosted})
    with pytest.raises(ModelError, match="restricted_ok"):
        await router.complete(_request(sensitivity=Sensitivity.RESTRICTED))
    assert hosted.requests == []


async def test_configured_restricted_ok_overrides_the_backends_own_claim() -> None:
    hosted = ScriptedBackend(["approved by config"])
    router = ModelRouter(
        RoutingTable(routes={"agent": (_route("hosted"),)}),
        {"hosted": hosted},
        restricted_ok={"hosted": True},
    )
    routed = await router.complete(_request(sensitivity=Sensitivity.RESTRICTED))
    assert routed.response.text == "approved by config"


async def test_a_rate_limit_wait_longer_than_the_cap_moves_on_instead_of_waiting() -> None:
    slow = ScriptedBackend([ModelRetryableError("429", status=429, retry_after=600)])
    table = RoutingTable(routes={"agent": (_route("slow"), _route("other"))})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    router = ModelRouter(
        table, {"slow": slow, "other": ScriptedBackend(["other"])}, max_retry_wait=30, sleep=sleep
    )
    routed = await router.complete(_request())
    assert routed.response.text == "other" and waits == []


async def test_every_route_failing_raises_model_error_naming_each_attempt() -> None:
    table = RoutingTable(routes={"agent": (_route("a"), _route("b"))})
    backends = {
        "a": ScriptedBackend([ModelRetryableError("overloaded", status=529)]),
        "b": ScriptedBackend([ModelRetryableError("boom", status=500)]),
    }
    with pytest.raises(ModelError, match=r"a/a-model try 1 failed.*b/b-model try 1 failed"):
        await ModelRouter(table, backends, sleep=_no_sleep).complete(_request())


async def test_guard_rate_limit_skips_a_route_and_the_next_one_answers() -> None:
    table = RoutingTable(routes={"agent": (_route("a"), _route("b"))})
    a, b = ScriptedBackend(["from a"]), ScriptedBackend(["from b"])
    seen: list[RouteAttempt] = []

    async def guard(attempt: RouteAttempt) -> None:
        seen.append(attempt)
        if attempt.route.backend == "a":
            raise RateLimited("backend a is over its rate")

    routed = await ModelRouter(table, {"a": a, "b": b}).complete(_request(), before_attempt=guard)
    assert routed.response.text == "from b"
    assert [x.outcome for x in routed.decision.attempts] == ["skipped", "ok"]
    assert a.requests == [] and [s.position for s in seen] == [0, 1]


async def test_guard_rate_limiting_every_route_raises_rate_limited() -> None:
    async def guard(attempt: RouteAttempt) -> None:
        raise RateLimited("circuit open")

    router = ModelRouter(RoutingTable(routes={"agent": (_route("a"),)}), {"a": ScriptedBackend()})
    with pytest.raises(RateLimited, match="every route"):
        await router.complete(_request(), before_attempt=guard)


async def test_a_policy_denial_stops_the_call_without_trying_fallbacks() -> None:
    b = ScriptedBackend(["from b"])

    async def guard(attempt: RouteAttempt) -> None:
        raise PolicyDenied("no-models-on-weekends", "it is Sunday")

    table = RoutingTable(routes={"agent": (_route("a"), _route("b"))})
    router = ModelRouter(table, {"a": ScriptedBackend(), "b": b})
    with pytest.raises(PolicyDenied):
        await router.complete(_request(), before_attempt=guard)
    assert b.requests == []


def test_a_route_naming_a_backend_without_an_instance_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ghost"):
        ModelRouter(RoutingTable(routes={"agent": (_route("ghost"),)}), {})
