"""train_router, evaluate_router and classify_batch, run as a person runs them."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.orchestrator.local_model import OTHER, LocalClassifier, seed_examples
from apps.orchestrator.models import ModelVersion
from apps.orchestrator.services import text_route_dry_run
from apps.pools.models import Intent, Pool
from apps.review.models import TrainingExample
from tests.orchestrator.conftest import route_reply, seed_intents

pytestmark = pytest.mark.django_db


def write_csv(path, rows, header=("text", "pool")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_train_router_on_seed_examples_stores_an_active_signed_model_with_metrics(pools):
    out = StringIO()
    call_command("train_router", stdout=out, stderr=StringIO())
    version = ModelVersion.objects.get(active=True)
    assert set(version.labels) == {"billing", "technical", "refund", "other"}
    assert version.metrics["accuracy"] > 0.7
    # 65 held-out examples are enough to vouch for 98% precision on 50 of them.
    assert version.metrics["min_accepted"] == 50
    assert version.metrics["threshold_met"]
    assert 0 < version.threshold < 1
    assert version.training_examples == len(seed_examples())
    assert f"model v{version.pk}" in out.getvalue()
    activation = version.activations.get()
    assert (activation.previous, activation.actor) == (None, None)


def test_train_router_refuses_unknown_labels_unless_asked_to_create_pools(pools, tmp_path):
    data = write_csv(tmp_path / "d.csv", [("how do I reset my router", "networking")] * 3)
    with pytest.raises(CommandError, match="not pools"):
        call_command("train_router", "--data", str(data), stdout=StringIO(), stderr=StringIO())
    assert not Pool.objects.filter(slug="networking").exists()


def test_train_router_works_for_150_pools(db, tmp_path):
    rows = [
        (f"question number {n} about topic{label} thing{label} item{label}", f"intent_{label}")
        for label in range(150)
        for n in range(4)
    ]
    data = write_csv(tmp_path / "many.csv", rows)
    call_command(
        "train_router",
        "--data",
        str(data),
        "--create-pools",
        "--no-seed",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    assert Pool.objects.filter(active=True).count() == 150
    version = ModelVersion.objects.get(active=True)
    assert len(version.labels) == 150
    assert version.metrics["min_accepted"] == 50
    # What it was trained on is kept as the base of later retrainings.
    assert TrainingExample.objects.count() == len(rows)


def test_train_router_creates_pools_for_labels_that_are_not_slugs_and_trains_on_them(db, tmp_path):
    rows = [(f"how do I change the email of my account {n}", "ACCOUNT") for n in range(6)]
    rows += [(f"where is my parcel number {n}", "Delivery Info") for n in range(6)]
    data = write_csv(tmp_path / "upper.csv", rows)
    call_command(
        "train_router",
        "--data",
        str(data),
        "--create-pools",
        "--no-seed",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    assert set(Pool.objects.values_list("slug", flat=True)) >= {"account", "delivery-info"}
    version = ModelVersion.objects.get(active=True)
    assert set(version.labels) >= {"account", "delivery-info"}
    assert version.training_examples == len(rows)  # none was dropped


def test_evaluate_router_json_reports_the_figures(pools, local_model, tmp_path):
    rows = [
        ("I forgot my password and cannot log in", "technical"),
        ("Please send me the invoice for March", "billing"),
        ("Are you hiring in Berlin?", "other"),
    ]
    data = write_csv(tmp_path / "eval.csv", rows)
    out = StringIO()
    call_command("evaluate_router", "--data", str(data), "--json", stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    for key in [
        "accuracy",
        "macro_f1",
        "per_pool",
        "confusion",
        "tier_share",
        "llm_call_share",
        "review_share",
        "cost_per_1000_usd",
        "latency_p50_ms",
        "latency_p95_ms",
    ]:
        assert key in result
    assert result["n"] == 3
    assert result["llm_call_share"] == 0  # no API key in tests
    assert sum(sum(row.values()) for row in result["confusion"].values()) == 3


def test_evaluate_router_json_gives_local_full_coverage_accuracy_and_precision_at_threshold(
    pools, local_model, tmp_path
):
    # The seed model is sure (>= 0.999) of the first three texts and less sure of the invoice.
    ModelVersion.objects.filter(pk=local_model.pk).update(threshold=0.999)
    rows = [
        ("I forgot my password and cannot log in", "technical"),
        ("The app crashes every time I upload a file", "billing"),  # labelled against the model
        ("Please send me the invoice for March", "billing"),
        ("Are you hiring in Berlin?", "other"),
    ]
    data = write_csv(tmp_path / "eval.csv", rows)
    out = StringIO()
    call_command("evaluate_router", "--data", str(data), "--json", stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    # The pipeline sends the invoice to review (below the threshold, no LLM): 2 of 4 right; the
    # local model alone names billing for it: 3 of 4.
    assert result["accuracy"] == 0.5
    assert result["full_coverage_accuracy"] == 0.75
    assert result["local_threshold"] == 0.999
    assert result["local_precision_at_threshold"] == {
        "billing": {"precision": None, "n": 0},
        "other": {"precision": 1.0, "n": 1},
        "technical": {"precision": 0.5, "n": 2},
    }
    text = StringIO()
    call_command("evaluate_router", "--data", str(data), stdout=text, stderr=StringIO())
    assert "accuracy at full coverage 0.7500" in text.getvalue()
    assert "technical 0.500 (2)" in text.getvalue()


def test_evaluate_router_gives_each_pool_s_precision_at_the_threshold_routing_holds_it_to(
    pools, local_model, tmp_path
):
    # No threshold for the model as a whole, technical's own: the local tier routes technical
    # only, and the figures say what it does.
    ModelVersion.objects.filter(pk=local_model.pk).update(
        threshold=1.0, pool_thresholds={"technical": 0.5}
    )
    rows = [
        ("I forgot my password and cannot log in", "technical"),
        ("The app crashes every time I upload a file", "billing"),  # labelled against the model
        ("Please send me the invoice for March", "billing"),
    ]
    data = write_csv(tmp_path / "eval.csv", rows)
    out = StringIO()
    call_command("evaluate_router", "--data", str(data), "--json", stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    assert result["local_precision_at_threshold"] == {
        "billing": {"precision": None, "n": 0},
        "technical": {"precision": 0.5, "n": 2},
    }


def test_evaluate_router_without_a_local_model_has_no_local_figures(pools, tmp_path):
    data = write_csv(tmp_path / "eval.csv", [("Please send me the invoice", "billing")])
    out = StringIO()
    call_command("evaluate_router", "--data", str(data), "--json", stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue())
    assert result["full_coverage_accuracy"] is None
    assert result["local_precision_at_threshold"] == {}


def train_on_intents(path, *extra):
    out = StringIO()
    call_command(
        "train_router",
        "--data",
        str(path),
        "--label-column",
        "intent",
        "--pool-column",
        "pool",
        *extra,
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


def test_train_router_on_intents_stores_a_model_of_intents_routing_to_pools(pools, tmp_path):
    data = write_csv(tmp_path / "intents.csv", seed_intents(), header=("text", "intent", "pool"))
    output = train_on_intents(data, "--no-seed")
    version = ModelVersion.objects.get(active=True)
    assert version.kind == ModelVersion.Kind.INTENT
    assert set(version.labels) == {"billing", "technical", "refund", OTHER}
    assert version.metrics["accuracy"] > 0.7
    assert 0 <= version.metrics["intent_accuracy"] <= 1
    assert "8 intents" in output
    assert "intent accuracy" in output
    classifier = LocalClassifier.from_bytes(bytes(version.artifact))
    assert classifier.intents["refund_b"] == "refund"
    # The intents of real pools are stored, each in its pool; `other` is no pool.
    assert sorted(Intent.objects.values_list("slug", "pool__slug")) == [
        (f"{pool}_{half}", pool) for pool in ("billing", "refund", "technical") for half in "ab"
    ]
    # Retraining learns intents again: the examples kept for it carry the stored intents (and
    # `other`, which is no pool's intent, as itself).
    assert set(TrainingExample.objects.values_list("label", flat=True)) == {
        *(f"{pool}_{half}" for pool in ("billing", "refund", "technical") for half in "ab"),
        OTHER,
    }
    # A routing run records the pool and the intent of it the model was surest of.
    ModelVersion.objects.filter(pk=version.pk).update(threshold=0.5)
    local = text_route_dry_run(text="I forgot my password and cannot log in").decisions[-1]
    assert (local.tier, local.action, local.pool) == ("local", "route", pools["technical"])
    assert local.intent is not None
    assert local.intent.slug in {"technical_a", "technical_b"}


def test_train_router_on_intents_with_seed_examples_makes_each_seed_pool_an_intent(pools, tmp_path):
    rows = [("where is the invoice for my order", "invoice_copy", "billing")] * 3 + [
        ("the mobile app crashes when I log in", "app_crash", "technical")
    ] * 3
    data = write_csv(tmp_path / "intents.csv", rows, header=("text", "intent", "pool"))
    train_on_intents(data)
    intents = LocalClassifier.from_bytes(
        bytes(ModelVersion.objects.get(active=True).artifact)
    ).intents
    assert intents["invoice_copy"] == "billing"
    assert intents["billing"] == "billing"  # the seed examples of billing
    assert intents[OTHER] == OTHER


def test_train_router_refuses_an_intent_given_two_pools_and_names_both(pools, tmp_path):
    rows = [
        ("I was charged twice", "double_charge", "billing"),
        ("I was charged twice, money back please", "double_charge", "refund"),
        ("the app crashes", "app_crash", "technical"),
    ]
    data = write_csv(tmp_path / "intents.csv", rows, header=("text", "intent", "pool"))
    with pytest.raises(CommandError, match="intent 'double_charge' has pools billing, refund"):
        train_on_intents(data, "--no-seed")
    assert not ModelVersion.objects.exists()
    assert not Intent.objects.exists()


def test_train_router_refuses_an_intent_that_the_admin_put_in_another_pool(pools, tmp_path):
    Intent.objects.create(slug="double_charge", pool=pools["refund"])
    rows = [
        ("I was charged twice", "double_charge", "billing"),
        ("it crashes", "crash", "technical"),
    ]
    data = write_csv(tmp_path / "intents.csv", rows, header=("text", "intent", "pool"))
    with pytest.raises(
        CommandError,
        match="intent 'double_charge' is in pool 'billing' in the data and in pool 'refund' in "
        "the admin",
    ):
        train_on_intents(data, "--no-seed")
    assert not ModelVersion.objects.exists()


def test_train_router_on_intents_needs_create_pools_for_unknown_pools(pools, tmp_path):
    rows = [("where is my parcel", "where_is_parcel", "shipping")] * 4 + [
        ("the app crashes when I log in", "app_crash", "technical")
    ] * 4
    data = write_csv(tmp_path / "intents.csv", rows, header=("text", "intent", "pool"))
    with pytest.raises(CommandError, match="not pools \\(shipping"):
        train_on_intents(data, "--no-seed")
    assert not Pool.objects.filter(slug="shipping").exists()
    train_on_intents(data, "--no-seed", "--create-pools")
    assert Intent.objects.get(slug="where_is_parcel").pool.slug == "shipping"
    assert ModelVersion.objects.get(active=True).labels == ["shipping", "technical"]


def test_train_router_on_intents_refuses_intents_that_are_not_slugs(pools, tmp_path):
    rows = [("hi", "say hello", "billing"), ("the app crashes", "crash", "technical")]
    data = write_csv(tmp_path / "intents.csv", rows, header=("text", "intent", "pool"))
    with pytest.raises(CommandError, match=r"intents must be slugs.*say hello"):
        train_on_intents(data, "--no-seed")


def test_train_router_on_pools_stores_a_model_of_pools_as_before(pools, tmp_path):
    call_command("train_router", stdout=StringIO(), stderr=StringIO())
    version = ModelVersion.objects.get(active=True)
    assert version.kind == ModelVersion.Kind.POOL
    assert "intent_accuracy" not in version.metrics
    assert LocalClassifier.from_bytes(bytes(version.artifact)).intents == {}
    ModelVersion.objects.filter(pk=version.pk).update(threshold=0.5)
    local = text_route_dry_run(text="I forgot my password and cannot log in").decisions[-1]
    assert (local.tier, local.pool, local.intent) == ("local", pools["technical"], None)


def test_classify_batch_sends_doubtful_texts_in_one_batch_at_half_price(pools, llm, tmp_path):
    llm.default = lambda body: route_reply("technical", 0.9)
    source = write_csv(
        tmp_path / "in.csv", [("the app shows error 500 on save",), ("hmm",)], header=("text",)
    )
    target = tmp_path / "out.csv"
    call_command(
        "classify_batch",
        "--in",
        str(source),
        "--out",
        str(target),
        "--anthropic-batch",
        "--poll-seconds",
        "0.01",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["routed_pool"] for r in rows] == ["technical", "technical"]
    assert {r["routed_tier"] for r in rows} == {"llm"}
    assert len(llm.batches) == 1
    # 350 input + 40 output tokens at Haiku prices, halved for the batch.
    assert rows[0]["cost_usd"] == f"{(350 * 1 + 40 * 5) / 2 / 1_000_000:.8f}"
    assert not [r for r in llm.requests if r.path == "/v1/messages"]


def test_classify_batch_without_the_flag_never_calls_a_model(pools, llm, tmp_path):
    source = write_csv(tmp_path / "in.csv", [("hmm",)], header=("text",))
    target = tmp_path / "out.csv"
    call_command(
        "classify_batch",
        "--in",
        str(source),
        "--out",
        str(target),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    with target.open() as handle:
        row = next(csv.DictReader(handle))
    assert row["routed_action"] == "review"
    assert llm.requests == []


def test_route_stuck_routes_tickets_left_in_routing(pools, local_model):
    from apps.chat.models import Message
    from apps.chat.services import conversation_create
    from apps.flows.messages import message_post
    from apps.tickets.models import Ticket

    conversation = conversation_create().conversation
    # Inside the test transaction on_commit never fires: like a server killed before routing.
    message_post(
        conversation=conversation,
        text="I forgot my password and cannot log in",
        sender=Message.Sender.CUSTOMER,
    )
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.status == Ticket.Status.ROUTING
    out = StringIO()
    call_command("route_stuck", stdout=out)
    ticket.refresh_from_db()
    assert ticket.status != Ticket.Status.ROUTING
    assert "routed 1 ticket" in out.getvalue()
