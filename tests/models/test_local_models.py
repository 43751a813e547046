"""The offline `local` models: real, deterministic, and honest about what they do."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from sklearn.model_selection import train_test_split

from tether.foundation.models.contract import Message, ModelRequest, ToolCall, ToolSpec
from tether.foundation.models.local import agent, classifier, judge, summarizer
from tether.foundation.models.tokens import count_request, usage_for


def test_ticket_classifier_generalises_to_held_out_tickets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    texts, labels = classifier.load_dataset()
    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=0.25, random_state=0, stratify=labels
    )
    model = classifier.build_pipeline().fit(train_x, train_y)
    accuracy = float(model.score(test_x, test_y))
    with capsys.disabled():
        print(f"\nlocal cheap_classify: held-out accuracy {accuracy:.3f} on {len(test_x)} tickets")
    assert accuracy >= 0.8


def test_classifier_labels_an_obvious_billing_ticket() -> None:
    prediction = classifier.classify(
        "I was charged twice on my credit card this month, refund please"
    )
    assert prediction.label == "billing"
    assert 0.0 < prediction.confidence <= 1.0


class CreateTicket(BaseModel):
    title: str
    priority: str = "normal"
    customer_id: int
    notify: bool = False


class FindCustomer(BaseModel):
    email: str


TOOLS = [
    ToolSpec(
        name="find_customer",
        description="Find a customer by email",
        parameters=FindCustomer.model_json_schema(),
    ),
    ToolSpec(
        name="create_ticket",
        description="Create a support ticket for a customer",
        parameters={
            **CreateTicket.model_json_schema(),
            "properties": {
                **CreateTicket.model_json_schema()["properties"],
                "priority": {"type": "string", "enum": ["low", "normal", "urgent"]},
            },
        },
    ),
]


def _ask(*messages: Message) -> ModelRequest:
    return ModelRequest(task_class="agent", messages=list(messages), tools=TOOLS)


def test_agent_chains_tools_feeding_an_earlier_result_into_the_next_call() -> None:
    user = Message.user(
        "Find the customer bob@example.com and create an urgent support ticket: login broken."
    )
    _, [first] = agent.respond(_ask(user))
    assert first.name == "find_customer"
    assert FindCustomer.model_validate(first.arguments).email == "bob@example.com"

    found = Message.tool(first, json.dumps({"customer_id": 77, "name": "Bob"}))
    _, [second] = agent.respond(_ask(user, Message.assistant(tool_calls=[first]), found))
    ticket = CreateTicket.model_validate(second.arguments)
    assert second.name == "create_ticket"
    assert (ticket.customer_id, second.arguments["priority"]) == (77, "urgent")


def test_agent_answers_in_text_once_every_relevant_tool_was_called() -> None:
    user = Message.user("Find the customer bob@example.com")
    call = ToolCall(id="c1", name="find_customer", arguments={"email": "bob@example.com"})
    result = Message.tool(call, json.dumps({"customer_id": 77}))
    text, calls = agent.respond(
        ModelRequest(
            task_class="agent",
            messages=[user, Message.assistant(tool_calls=[call]), result],
            tools=TOOLS[:1],
        )
    )
    assert calls == []
    assert "customer_id=77" in text


def test_agent_is_deterministic_and_ids_are_stable() -> None:
    request = _ask(Message.user("Find the customer bob@example.com"))
    assert agent.respond(request) == agent.respond(request)


def test_agent_without_a_fitting_tool_says_so() -> None:
    text, calls = agent.respond(
        ModelRequest(task_class="agent", messages=[Message.user("Tell me a joke")])
    )
    assert calls == [] and text.startswith("No offered tool fits")


def test_judge_scores_reference_coverage_as_json() -> None:
    reference = "\nReference: Paris capital France"
    good = "Question: capital?\nAnswer: Paris is the capital of France" + reference
    bad = "Question: capital?\nAnswer: I like trains" + reference
    graded = [
        json.loads(judge.grade(ModelRequest(task_class="judge", messages=[Message.user(t)])))
        for t in (good, bad)
    ]
    assert graded[0]["passed"] and graded[0]["score"] == 1.0
    assert not graded[1]["passed"] and graded[1]["score"] == 0.0


def test_summarizer_keeps_the_central_sentences_in_order() -> None:
    text = (
        "The deploy failed at noon. Lunch was pizza. The deploy failed because the database "
        "migration locked the orders table. The weather was fine. Rolling back the migration "
        "fixed the deploy."
    )
    summary = summarizer.summarize(text, max_sentences=2)
    assert summary.split(". ")[0].startswith("The deploy failed")
    assert "pizza" not in summary and "weather" not in summary


def test_token_count_grows_with_the_conversation_and_counts_tool_calls() -> None:
    short = ModelRequest(task_class="agent", messages=[Message.user("hi")])
    longer = ModelRequest(
        task_class="agent", messages=[Message.user("hi there, how are you today?")]
    )
    assert count_request(longer) > count_request(short)
    call = ToolCall(id="c", name="find_customer", arguments={"email": "a@b.c"})
    assert usage_for(short, "", [call]).output_tokens > usage_for(short, "", []).output_tokens


def test_summary_says_a_repeated_sentence_once() -> None:
    from tether.foundation.models.local.summarizer import summarize

    text = "Agents loop. " * 3 + "Budgets stop them. Traces explain them. Leases move them."
    summary = summarize(text, max_sentences=3)
    assert summary.count("Agents loop.") <= 1
    assert len(summary.split(". ")) == 3
