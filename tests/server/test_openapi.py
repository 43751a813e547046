"""The OpenAPI schema is the contract: every operation documents its failures and is typed."""

from __future__ import annotations

from tests.server.conftest import Served

FAILURES = {"400", "401", "403", "404", "409", "422"}


def test_every_operation_documents_its_failures_with_a_typed_body(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
    ]
    assert len(operations) >= 14
    for path, method, op in operations:
        missing = FAILURES - set(op["responses"])
        assert not missing, f"{method.upper()} {path} lacks {sorted(missing)}"
        for status in FAILURES:
            body = op["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    ok = schema["paths"]["/api/runs/{run_id}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RunView"}


def test_the_pages_are_not_in_the_api_schema(served: Served) -> None:
    paths = served.client.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/api/") for p in paths)
