"""Large values never enter Temporal's history: with blobs on S3 (moto in server mode, reached
by endpoint URL as R2 is, so every worker host reads the same blobs), a 3 MB step result and
a 100-call agent loop whose model inputs add up to more than the 50 MB history limit finish on
the temporal engine, with histories far below Temporal's history limit (a value over the blob
threshold is a reference in history, so no payload nears the 2 MB limit)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from unittest.mock import patch

import pytest

from tests.fakes.s3_server import AWS, moto_server
from tether import RunStatus, Tether

pytestmark = pytest.mark.temporal

MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url, patch.dict(os.environ, AWS):
        yield url


@pytest.fixture
def t(
    make_tether: Callable[..., Tether], temporal_server: str, s3_endpoint: str
) -> Iterator[Tether]:
    import boto3

    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    with patch.dict(os.environ, AWS):
        boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
        yield make_tether(
            "sqlite",
            engine="temporal",
            temporal_address=temporal_server,
            temporal_queue_prefix=f"t{uuid.uuid4().hex[:12]}",
            workflows=["tests.runtime.flows", "tests.engine.agents"],
            blobs="s3",
            blobs_s3_url=f"s3://{bucket}/tether",
            blobs_s3_endpoint_url=s3_endpoint,
            limits={"model_call_cap": 200},
        )


def history_bytes(t: Tether, run_id: str) -> int:
    """The size of every Temporal execution of the run's history, as JSON."""

    async def size() -> int:
        client = await t.engine.client()  # type: ignore[attr-defined]
        total = 0
        wid = t.engine.execution_id(run_id)  # type: ignore[attr-defined]
        async for e in client.list_workflows(f"WorkflowId = '{wid}'"):
            history = await client.get_workflow_handle(wid, run_id=e.run_id).fetch_history()
            total += len(history.to_json())
        return total

    found: int = t.engine._call(size())  # type: ignore[attr-defined]
    return found


def s3_bytes(t: Tether) -> int:
    return sum(size for _, _, size in t.blobs.addresses())


def test_a_3_mb_step_result_is_a_blob_on_s3_and_history_stays_small(t: Tether) -> None:
    run = t.run(t.start("blob", {"size": 3 * MB}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": 3 * MB}
    (entry,) = t.journal(run.id)
    assert entry.value is not None and entry.value.startswith('{"$blob":')
    assert s3_bytes(t) >= 3 * MB
    assert history_bytes(t, run.id) < 64 * 1024


def test_a_100_call_agent_loop_past_the_history_limit_in_inputs_finishes(t: Tether) -> None:
    # turn i sends i documents of 12 KB: 60 MB of model inputs over the run
    run = t.run(t.start("long_agent", {"calls": 100, "chunk_bytes": 12 * 1024}))
    assert run.status is RunStatus.COMPLETED, run.error
    assert t.output(run)["calls"] == 100
    models = [e for e in t.journal(run.id) if e.kind.value == "model"]
    assert len(models) == 100 and all(e.status.value == "ok" for e in models)
    # requests under the 256 KiB blob threshold stay inline (the first 20 turns' are); every
    # larger one is a reference: a few MB in all, where 60 MB of inputs would pass the limit
    assert history_bytes(t, run.id) < 8 * MB
