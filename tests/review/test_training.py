"""Learning from corrections: labels from people (and distilled LLM decisions), retraining behind
the no-regression gate, the misroute-rate threshold, and activating or rolling back versions."""

import itertools
import json
import math
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.management import call_command

from apps.chat.models import Message
from apps.chat.services import conversation_create
from apps.core.errors import Conflict, PermissionDenied
from apps.desk.services import ticket_reroute
from apps.flows.messages import message_post
from apps.flows.routing import ticket_route
from apps.orchestrator import selectors
from apps.orchestrator.local_model import (
    OTHER,
    Evaluation,
    LocalClassifier,
    Prediction,
    embeddings,
    misroute_rate,
    seed_examples,
    threshold_for_misroute_rate,
)
from apps.orchestrator.models import ModelVersion, ModelVersionActivation, RoutingDecision
from apps.pools.models import Intent, Pool
from apps.pools.services import intent_ensure, pool_upsert
from apps.review.models import ReviewItem, RoutingLabel, TrainingExample
from apps.review.services import review_item_resolve
from apps.review.tasks import router_retrain_task, router_retrain_when_due_task
from apps.review.training.examples import training_base
from apps.review.training.labels import DISTILLED, UNMOVED, label_held_out, training_labels
from apps.review.training.prompt_examples import prompt_examples_gather
from apps.review.training.retrain import (
    _gate,
    model_version_retrain,
    model_version_retrain_due,
)
from apps.review.training.versions import model_version_activate, model_version_train
from apps.tickets.models import Ticket
from tests.orchestrator.conftest import route_reply, seed_intents

pytestmark = pytest.mark.django_db

# A product's own words the seed examples never saw: every one of them is a technical fault.
DEVICES = [
    "zorbit hub",
    "quantel dongle",
    "flexo dock",
    "vantix relay",
    "plumo beacon",
    "krell pad",
]
SYMPTOMS = [
    "keeps flashing amber",
    "blinks orange twice",
    "shows a grey skull",
    "hums and goes cold",
    "glows purple then nothing",
    "flickers at dusk",
]
JARGON = [
    (f"my {device} {symptom}", "technical")
    for device, symptom in itertools.product(DEVICES, SYMPTOMS)
]
# Plainly worded messages the seed model already routes right.
PLAIN = [
    ("Can I get a copy of last month's invoice?", "billing"),
    ("Please update the billing address on my account", "billing"),
    ("Why did my subscription price go up?", "billing"),
    ("My card keeps getting declined at checkout", "billing"),
    ("I need a receipt with our company VAT number", "billing"),
    ("I'd like my money back for the broken blender", "refund"),
    ("Please cancel my order and refund me", "refund"),
    ("Where is the refund you promised last week?", "refund"),
    ("I returned the shoes, when do I get the refund?", "refund"),
    ("I was charged twice and want one payment returned", "refund"),
    ("I can't log in, it says my password is wrong", "technical"),
    ("The page crashes whenever I upload a file", "technical"),
    ("Two-factor codes never arrive on my phone", "technical"),
    ("thanks so much, have a great day", OTHER),
    ("Are you hiring backend engineers?", OTHER),
    ("I love your product, keep it up", OTHER),
]
FLIPPED = {"billing": "technical", "technical": "refund", "refund": "billing", OTHER: "billing"}


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", password="pw")


@pytest.fixture
def label_rows(pools):
    """Create a resolved ticket and a people's label per (text, pool); `flip_train` relabels the
    tickets outside the held-out slice (seed 0, share 0.3) with a wrong pool."""
    conversation = conversation_create(name="Ada").conversation

    def create(rows, *, source="review", flip_train=False):
        created = []
        for text, slug in rows:
            ticket = Ticket.objects.create(conversation=conversation, status=Ticket.Status.RESOLVED)
            if flip_train and not label_held_out(ticket_id=ticket.pk, seed=0, share=0.3):
                slug = FLIPPED[slug]
            RoutingLabel.objects.create(
                ticket=ticket, source=source, pool=pools.get(slug), text=text
            )
            created.append(ticket)
        return created

    return create


def held_out_slice(seed=0, share=0.3):
    return [
        label
        for label in training_labels()
        if label.source != DISTILLED
        and label_held_out(ticket_id=label.ticket_id, seed=seed, share=share)
    ]


def open_ticket(text):
    conversation = conversation_create(name="Ada").conversation
    message_post(conversation=conversation, text=text, sender=Message.Sender.CUSTOMER)
    ticket = Ticket.objects.get(conversation=conversation)
    ticket_route(ticket=ticket)
    ticket.refresh_from_db()
    return ticket


def routing_version():
    """The model version the local tier routes with now."""
    tier = selectors.local_tier_active()
    assert tier is not None
    return tier.version


def local_decision(ticket):
    return RoutingDecision.objects.get(ticket=ticket, tier=RoutingDecision.Tier.LOCAL)


# --- labels ----------------------------------------------------------------------------------


def test_labels_come_from_every_source_newest_per_ticket_without_empty_texts(pools, label_rows):
    review, audit, reroute, corrected, later_empty, empty = label_rows(
        [
            ("Why is VAT on my invoice?", "billing"),
            ("hello there", None),
            ("The app crashes at start", "technical"),
            ("I want my money back", "billing"),
            ("Refund my order please", "refund"),
            ("", "refund"),
        ]
    )
    RoutingLabel.objects.filter(ticket=audit).update(source="audit")
    RoutingLabel.objects.filter(ticket=reroute).update(source="reroute")
    # A later verdict on the same ticket wins; the text the router saw is kept.
    RoutingLabel.objects.create(ticket=corrected, source="reroute", pool=pools["refund"], text="")
    RoutingLabel.objects.create(ticket=later_empty, source="audit", pool=pools["refund"], text="")

    labels = {label.ticket_id: label for label in training_labels()}

    assert empty.pk not in labels
    assert (labels[review.pk].label, labels[review.pk].source) == ("billing", "review")
    assert (labels[audit.pk].label, labels[audit.pk].source) == (OTHER, "audit")
    assert (labels[reroute.pk].label, labels[reroute.pk].source) == ("technical", "reroute")
    assert (labels[corrected.pk].label, labels[corrected.pk].text) == (
        "refund",
        "I want my money back",
    )
    assert labels[later_empty.pk].source == "audit"
    assert {label.weight for label in labels.values()} == {1.0}


def test_review_verdicts_reroutes_and_confident_llm_decisions_become_weighted_labels(
    pools, llm, root, settings
):
    settings.ROUTER_DISTILL_WEIGHT = 0.25
    llm.enqueue(route_reply("technical", 0.45))
    in_review = open_ticket("My email is ada@example.com and the invoice total looks wrong")
    review_item_resolve(
        item=ReviewItem.objects.get(ticket=in_review, kind="review"),
        reviewer=root,
        verdict="routed",
        pool=pools["billing"],
    )
    llm.enqueue(route_reply("technical", 0.95))
    moved = open_ticket("The export to spreadsheet shows last year's totals")
    ticket_reroute(ticket=moved, actor=root, pool=pools["billing"], reason="it is about totals")
    llm.enqueue(route_reply("technical", 0.95))
    confident = open_ticket("The sync button spins forever")
    llm.enqueue(route_reply("billing", 0.8))
    doubtful = open_ticket("Something about the plan page")
    assert doubtful.status == Ticket.Status.QUEUED  # routed, but below the distillation bar

    labels = {label.ticket_id: label for label in training_labels()}

    assert set(labels) == {in_review.pk, moved.pk, confident.pk}
    assert (labels[in_review.pk].label, labels[in_review.pk].source) == ("billing", "review")
    assert "ada@example.com" not in labels[in_review.pk].text  # the redacted text
    assert "invoice total" in labels[in_review.pk].text
    # The agent's correction wins over the LLM's confident decision.
    assert (labels[moved.pk].label, labels[moved.pk].weight) == ("billing", 1.0)
    assert labels[confident.pk].source == DISTILLED
    assert (labels[confident.pk].label, labels[confident.pk].weight) == ("technical", 0.25)

    settings.ROUTER_DISTILL_WEIGHT = 0
    assert confident.pk not in {label.ticket_id for label in training_labels()}


def test_the_local_tiers_routes_nobody_moved_become_weighted_labels_and_a_move_replaces_them(
    local_model, pools, root, settings
):
    settings.ROUTER_UNMOVED_WEIGHT = 0.2
    kept = open_ticket("I can't log in, it says my password is wrong")
    moved = open_ticket("The page crashes whenever I upload a file")
    for ticket in (kept, moved):  # the seed model routes plain words itself
        assert (local_decision(ticket).action, ticket.status) == ("route", Ticket.Status.QUEUED)
    ticket_reroute(ticket=moved, actor=root, pool=pools["billing"], reason="it is about a bill")
    to_review = open_ticket("zorbit hub blinks orange twice")
    assert (local_decision(to_review).action, to_review.status) == ("pass", "in_review")

    labels = {label.ticket_id: label for label in training_labels()}

    # The local tier's decision that routed nothing is no label.
    assert set(labels) == {kept.pk, moved.pk}
    assert (labels[kept.pk].label, labels[kept.pk].source, labels[kept.pk].weight) == (
        "technical",
        UNMOVED,
        0.2,
    )
    assert not labels[kept.pk].from_people
    # The agent's move is a person's label, and it wins over the route it corrected.
    assert (labels[moved.pk].label, labels[moved.pk].source, labels[moved.pk].weight) == (
        "billing",
        "reroute",
        1.0,
    )
    assert labels[moved.pk].from_people
    # The router prompt's examples are people's: the local tier's own routes are not among them.
    labelled, _ = prompt_examples_gather(pools={"billing", "technical", "refund"})
    assert ("The page crashes whenever I upload a file", "billing") in labelled
    assert not any(text == labels[kept.pk].text for text, _ in labelled)

    settings.ROUTER_UNMOVED_WEIGHT = 0
    assert {label.ticket_id for label in training_labels()} == {moved.pk}


def test_sample_weights_leave_unweighted_training_unchanged_and_count_less():
    texts, labels = [t for t, _ in seed_examples()], [p for _, p in seed_examples()]
    plain = LocalClassifier.train(texts=texts, labels=labels)
    ones = LocalClassifier.train(texts=texts, labels=labels, sample_weight=[1.0] * len(texts))
    assert ones.to_bytes() == plain.to_bytes()

    # The same new phrasing, said to be billing by people and technical by a distilled label:
    # the heavier labels win.
    jargon = [text for text, _ in JARGON]
    both_texts = texts + jargon + jargon
    both_labels = labels + ["billing"] * len(jargon) + ["technical"] * len(jargon)
    weights = [1.0] * len(texts) + [1.0] * len(jargon) + [0.2] * len(jargon)
    weighted = LocalClassifier.train(texts=both_texts, labels=both_labels, sample_weight=weights)
    predicted = [p.label for p in weighted.predict_many(["my vantix relay keeps flashing amber"])]
    assert predicted == ["billing"]
    with pytest.raises(ValueError, match="positive"):
        LocalClassifier.train(texts=texts, labels=labels, sample_weight=[0.0] * len(texts))


# --- the threshold ---------------------------------------------------------------------------


def prediction(label, confidence):
    return Prediction(label=label, confidence=confidence, scores={label: confidence})


def test_the_threshold_is_the_lowest_confidence_holding_the_misroute_rate():
    predictions = [
        prediction("billing", 0.99),
        prediction("billing", 0.95),
        prediction("refund", 0.9),  # wrong
        prediction("technical", 0.8),
        prediction(OTHER, 0.7),  # a confident "other" goes to a person: never a misroute
        prediction("technical", 0.6),  # wrong
    ]
    truth = ["billing", "billing", "billing", "technical", "refund", "billing"]
    assert threshold_for_misroute_rate(predictions, truth, target_rate=0.0) == 0.95
    assert threshold_for_misroute_rate(predictions, truth, target_rate=0.25) == 0.8
    assert threshold_for_misroute_rate(predictions, truth, target_rate=0.4) == 0.6
    assert misroute_rate(predictions, truth, threshold=0.8) == (0.25, 4 / 6)
    assert misroute_rate(predictions, truth, threshold=1.0) == (0.0, 0.0)
    # The most confident route is wrong: no threshold holds 0%, so nothing may be auto-routed.
    assert threshold_for_misroute_rate(predictions[2:], truth[2:], target_rate=0.0) == math.inf


def test_a_threshold_must_rest_on_enough_labelled_auto_routes():
    right = [prediction("billing", 0.99 - i / 1000) for i in range(40)]
    truth = ["billing"] * 40
    # 40 right answers hold 0% misroutes at the lowest confidence...
    assert threshold_for_misroute_rate(right, truth, target_rate=0.02) == pytest.approx(0.951)
    # ...but a rate on fewer than `min_routed` routes is not trusted, however good it looks.
    assert threshold_for_misroute_rate(right, truth, target_rate=0.02, min_routed=50) == math.inf
    assert threshold_for_misroute_rate(
        right, truth, target_rate=0.02, min_routed=30
    ) == pytest.approx(0.951)
    # The lowest threshold with 30 routes behind it, not a higher one with fewer.
    assert threshold_for_misroute_rate(
        right[:30], truth[:30], target_rate=0.0, min_routed=30
    ) == pytest.approx(0.961)


def test_too_few_labels_for_the_target_keep_the_local_tier_from_auto_routing(
    local_model, label_rows, settings
):
    # 16 plain labels, every one predicted right: still far fewer than 1/2% = 50 auto-routes.
    settings.ROUTER_RETRAIN_MIN_LABELS = 10
    label_rows(PLAIN)
    result = model_version_retrain()
    assert result.version is not None
    threshold = result.version.metrics["threshold"]
    assert (threshold["met"], threshold["value"], threshold["min_routed"]) == (False, 1.0, 50)
    assert "at least 50 of the 16 labelled texts" in threshold["note"]
    assert result.version.threshold == 1.0
    # The seed model routes the held-out slice within the target: a candidate that would route
    # nothing does not replace it, however accurate.
    active = result.metrics["active"]
    assert active["auto_routed_share"] > 0
    assert active["misroute_rate"] <= 0.02
    assert not result.activated
    assert result.reason.startswith("no threshold holds 2.0% yet, while the active")
    assert routing_version() == local_model


# --- retraining ------------------------------------------------------------------------------


def test_too_few_labels_from_people_train_no_candidate(local_model, label_rows, settings):
    settings.ROUTER_RETRAIN_MIN_LABELS = 20
    label_rows(PLAIN)
    result = model_version_retrain()
    assert result.version is None
    assert not result.activated
    assert result.reason == "16 labels from people; retraining needs 20"
    assert ModelVersion.objects.get() == local_model  # nothing stored, nothing switched


def test_a_candidate_that_learns_a_new_phrasing_is_activated_and_the_local_tier_uses_it(
    local_model, label_rows, settings
):
    # 52 labels measure a 5% misroute rate (30 auto-routes at least), not a 2% one (50).
    settings.ROUTER_TARGET_MISROUTE_RATE = 0.05
    label_rows(JARGON + PLAIN)
    before = open_ticket("zorbit hub blinks orange twice")
    # The seed model does not know the jargon: not sure of any pool, it passes the ticket on,
    # and with no LLM configured a person must look.
    assert (local_decision(before).action, before.status) == ("pass", Ticket.Status.IN_REVIEW)

    result = model_version_retrain()

    version = result.version
    assert result.activated
    assert version is not None
    assert version.active
    local_model.refresh_from_db()
    assert not local_model.active
    metrics = version.metrics
    assert metrics["candidate"]["accuracy"] > metrics["active"]["accuracy"]
    assert metrics["active"]["version"] == local_model.pk
    assert metrics["gate"]["passed"]
    assert metrics["labels"]["human"] == len(JARGON + PLAIN)
    assert metrics["labels"]["train"] + metrics["labels"]["holdout"] == len(JARGON + PLAIN)
    assert version.training_examples == len(seed_examples()) + metrics["labels"]["train"]
    assert version.signature == selectors.artifact_signature(bytes(version.artifact))
    # Every label from people was scored out of sample to choose the threshold.
    assert metrics["threshold"]["labels_scored"] == len(JARGON + PLAIN)
    assert metrics["threshold"]["met"]
    assert metrics["threshold"]["misroute_rate"] <= 0.05
    activation = ModelVersionActivation.objects.get()
    assert (activation.version, activation.previous, activation.actor) == (
        version,
        local_model,
        None,
    )

    after = open_ticket("zorbit hub blinks orange twice")
    decision = local_decision(after)
    assert decision.model_version == version
    assert decision.pool == after.pool
    assert after.pool.slug == "technical"


def test_a_worse_candidate_stays_inactive_with_its_metrics_and_the_active_model_unchanged(
    local_model, label_rows
):
    # Every label outside the held-out slice names a wrong pool; 30 or more are held out.
    label_rows(PLAIN * 8, flip_train=True)

    result = model_version_retrain()

    assert not result.activated
    version = result.version
    assert version is not None
    assert not version.active
    local_model.refresh_from_db()
    assert local_model.active
    assert routing_version() == local_model
    assert not ModelVersionActivation.objects.exists()
    metrics = version.metrics
    assert metrics["gate"]["passed"] is False
    assert "less accurate than the active model" in metrics["gate"]["reason"]
    assert metrics["candidate"]["accuracy"] < metrics["active"]["accuracy"]
    assert metrics["candidate"]["n"] == metrics["active"]["n"] == metrics["labels"]["holdout"]
    assert metrics["labels"]["holdout"] >= 30
    assert version.note.startswith("retrain_router: kept inactive: less accurate")


def test_the_threshold_holds_the_target_on_every_label_scored_out_of_sample(
    local_model, label_rows, settings
):
    settings.ROUTER_THRESHOLD_MIN_ROUTED = 5
    # People later said "no pool fits" for every fifth ticket: no model routes those right, so
    # a looser target lets more wrong routes through at a lower threshold.
    for ticket in label_rows(JARGON + PLAIN * 2):
        if ticket.pk % 5 == 0:
            RoutingLabel.objects.create(ticket=ticket, source="reroute", pool=None, text="")
    human = len(JARGON + PLAIN * 2)
    chosen = []
    for target in (0.2, 0.22, 0.25):
        version = model_version_retrain(target_misroute_rate=target, force=True).version
        assert version is not None
        figures = version.metrics["threshold"]
        # Every label from people, the held-out slice and the folds, is scored once.
        assert figures["labels_scored"] == human
        assert figures["folds"] == settings.ROUTER_RETRAIN_FOLDS
        assert figures["met"]
        assert figures["misroute_rate"] <= target
        assert figures["auto_routed_share"] > 0
        assert figures["auto_routed_share"] * human >= figures["min_routed"]
        assert version.threshold == figures["value"]
        chosen.append((version.threshold, figures["auto_routed_share"]))
    # The same out-of-sample predictions each time: a looser target never raises the threshold
    # and never routes less.
    thresholds = [threshold for threshold, _ in chosen]
    shares = [share for _, share in chosen]
    assert thresholds == sorted(thresholds, reverse=True)
    assert shares == sorted(shares)
    assert chosen[0] != chosen[-1]


def test_retraining_on_the_same_labels_again_trains_nothing_unless_forced(local_model, label_rows):
    label_rows(JARGON + PLAIN)
    first = model_version_retrain()
    assert first.version is not None

    again = model_version_retrain()
    assert again.version is None
    assert again.reason == f"nothing new since {first.version}"

    forced = model_version_retrain(force=True)
    assert forced.version is not None
    assert forced.version.pk != first.version.pk
    label_rows([("my plumo beacon blinks orange twice at night", "technical")])
    assert model_version_retrain().version is not None


def test_the_daily_task_retrains_through_the_same_service(local_model, label_rows, settings):
    settings.ROUTER_TARGET_MISROUTE_RATE = 0.05  # what 52 labels can measure (see above)
    label_rows(JARGON + PLAIN)
    router_retrain_task.delay()
    assert ModelVersion.objects.get(active=True).note.startswith("retrain_router: activated")


def evaluation(accuracy, brier, n=80):
    return Evaluation(
        accuracy=accuracy, macro_f1=accuracy, per_label={}, confusion={}, ece=0.0, n=n, brier=brier
    )


def test_the_gate_wants_accuracy_and_brier_score_no_worse_than_the_active_models(local_model):
    active = evaluation(0.80, 0.120)
    assert _gate(evaluation(0.85, 0.100), active, local_model)[0]
    assert _gate(evaluation(0.80, 0.1205), active, local_model)[0]  # within rounding
    passed, why = _gate(evaluation(0.7875, 0.050), active, local_model)
    assert not passed
    assert why.startswith("less accurate than the active model")
    # As accurate, but its confidences are further from the truth: not activated.
    passed, why = _gate(evaluation(0.80, 0.150), active, local_model)
    assert not passed
    assert why.startswith("worse calibrated than the active model: accuracy 0.800 vs 0.800")
    assert "Brier 0.150 vs 0.120" in why
    # On fewer than 30 held-out labels one text decides either score: the candidate passes.
    passed, why = _gate(evaluation(4 / 6, 0.450, n=6), evaluation(1.0, 0.100, n=6), local_model)
    assert passed
    assert why.startswith("6 held-out labels, too few to compare on: accuracy 0.667 vs 1.000")
    assert not _gate(evaluation(0.80, 0.100, n=30), evaluation(0.85, 0.100, n=30), local_model)[0]


def scored(terms, accuracy=0.80):
    """An evaluation with its per-text Brier terms, as `evaluate` gives them."""
    return Evaluation(
        accuracy=accuracy,
        macro_f1=accuracy,
        per_label={},
        confusion={},
        ece=0.0,
        n=len(terms),
        brier=sum(terms) / len(terms),
        brier_terms=tuple(terms),
    )


def test_the_gate_holds_a_candidate_back_on_its_brier_score_only_when_the_texts_show_it_worse(
    local_model,
):
    # Scored on the same 40 texts: the candidate is better on some, worse on others, 0.0025
    # worse on average. Noise: a paired t-test does not show it worse, so it passes.
    active = [0.30, 0.10] * 20
    noisy = [0.40, 0.005] * 20
    noisy[0] = 0.41
    passed, why = _gate(scored(noisy, 0.85), scored(active), local_model)
    assert passed, why
    assert scored(noisy).brier - scored(active).brier > 0.002
    # The same 0.0025 on every text: the texts show it worse, held back.
    worse = [term + 0.0025 for term in active]
    passed, why = _gate(scored(worse, 0.85), scored(active), local_model)
    assert not passed
    assert why.startswith("worse calibrated than the active model")
    assert why.endswith("p = 0.000")
    # Far worse on a few texts, the same on the rest: p below 0.05, held back.
    spread = list(active)
    for i in range(0, 40, 4):
        spread[i] += 0.2
    passed, why = _gate(scored(spread, 0.85), scored(active), local_model)
    assert not passed, why


# --- the base a retraining starts from -------------------------------------------------------

CLINIC = [
    ("my appointment moved, can I see the doctor tomorrow", "appointments"),
    ("please book me in with the dentist next week", "appointments"),
    ("I need to reschedule my check-up", "appointments"),
    ("can I get my prescription refilled", "pharmacy"),
    ("is my medicine ready for pickup", "pharmacy"),
    ("the pharmacy gave me the wrong pills", "pharmacy"),
]


def test_an_activated_training_set_is_kept_once_as_the_base_of_later_retrainings(pools):
    for slug in ("appointments", "pharmacy"):
        pool_upsert(slug=slug, name=slug.title(), description=f"{slug} desk")
    model_version_train(examples=CLINIC * 2, note="clinic set")
    model_version_train(examples=[*CLINIC[:2], ("hello", "nosuchpool")], activate=False)

    kept = list(TrainingExample.objects.values_list("text", "label", "dataset"))
    assert sorted(kept) == sorted((text, label, "clinic set") for text, label in CLINIC)
    # Later retrainings start from it (and only the labels of active pools), not the shipped
    # seed examples of pools this desk does not train on.
    assert sorted(training_base(labels={"appointments", "pharmacy", OTHER})) == sorted(CLINIC)
    Pool.objects.filter(slug="pharmacy").update(active=False)
    assert sorted(training_base(labels={"appointments", OTHER})) == sorted(
        row for row in CLINIC if row[1] == "appointments"
    )


def test_without_kept_examples_the_shipped_seeds_are_the_base_and_their_other_only_beside_them(
    db,
):
    shipped = seed_examples()
    default = training_base(labels={"billing", "technical", "refund", OTHER})
    assert default == shipped
    # A desk of other pools: shipped "other" texts (greetings, jokes...) could be its pools.
    assert training_base(labels={"jokes", "weather", OTHER}) == []
    assert {label for _, label in training_base(labels={"billing", OTHER})} == {
        "billing",
        OTHER,
    }


def test_retraining_learns_from_the_base_plus_the_labels(pools, label_rows, settings):
    settings.ROUTER_RETRAIN_MIN_LABELS = 10
    model_version_train(examples=seed_examples(), note="seed examples")
    label_rows(PLAIN)
    result = model_version_retrain()
    assert result.version is not None
    counts = result.metrics["labels"]
    assert counts["base_examples"] == len(set(seed_examples()))
    assert result.version.training_examples == counts["base_examples"] + counts["train"]


def test_retraining_a_model_of_intents_gives_a_model_of_intents(pools, label_rows, settings):
    settings.ROUTER_RETRAIN_MIN_LABELS = 10
    rows = seed_intents()
    for _, intent, pool in rows:
        if pool != OTHER:
            intent_ensure(slug=intent, pool=pools[pool])
    model_version_train(
        examples=[(text, intent) for text, intent, _ in rows],
        intents={intent: pool for _, intent, pool in rows},
        note="intents",
    )
    label_rows(PLAIN)  # people's labels name pools

    result = model_version_retrain()

    assert result.version is not None
    assert result.version.kind == ModelVersion.Kind.INTENT
    intents = LocalClassifier.from_bytes(bytes(result.version.artifact)).intents
    assert intents["billing_a"] == "billing"
    assert intents["technical_b"] == "technical"
    # A correction names a pool: next to intents, it is learnt as that pool's own intent.
    assert intents["billing"] == "billing"
    assert set(result.version.labels) == {"billing", "technical", "refund", OTHER}
    # The router prompt's examples name the intents' pools.
    labelled, _corrections = prompt_examples_gather(pools={"billing", "technical", "refund"})
    assert {pool for _, pool in labelled} == {"billing", "technical", "refund"}
    assert sum(pool != OTHER for _, _, pool in rows) <= len(labelled)
    # Moving an intent to another pool is a change to learn from, not "nothing new".
    Intent.objects.filter(slug="billing_a").update(pool=pools["refund"])
    moved = model_version_retrain()
    assert moved.version is not None
    assert LocalClassifier.from_bytes(bytes(moved.version.artifact)).intents["billing_a"] == (
        "refund"
    )


# --- activation and rollback -----------------------------------------------------------------


def test_rolling_back_activates_the_older_version_records_it_and_routing_uses_it(
    local_model, label_rows, root, settings
):
    settings.ROUTER_TARGET_MISROUTE_RATE = 0.05
    label_rows(JARGON + PLAIN)
    retrained = model_version_retrain().version
    assert retrained is not None
    assert open_ticket("zorbit hub blinks orange twice").pool.slug == "technical"

    activation = model_version_activate(version=local_model, actor=root, note="too eager")

    assert (activation.version, activation.previous, activation.actor, activation.note) == (
        local_model,
        retrained,
        root,
        "too eager",
    )
    assert activation.created_at is not None
    assert list(ModelVersion.objects.filter(active=True)) == [local_model]
    assert routing_version() == local_model
    ticket = open_ticket("zorbit hub blinks orange twice")
    assert local_decision(ticket).model_version == local_model
    assert ticket.pool is None  # the seed model does not know the jargon


def test_activation_refuses_the_active_version_a_bad_signature_and_users_without_permission(
    local_model, root
):
    with pytest.raises(Conflict, match="already active"):
        model_version_activate(version=local_model, actor=root)
    tampered = ModelVersion.objects.create(
        labels=local_model.labels,
        artifact=bytes(local_model.artifact),
        signature="0" * 64,
        threshold=0.5,
    )
    with pytest.raises(Conflict, match="bad signature"):
        model_version_activate(version=tampered, actor=root)
    viewer = User.objects.create_user("vic", password="pw", is_staff=True)
    with pytest.raises(PermissionDenied):
        model_version_activate(version=tampered, actor=viewer)
    assert list(ModelVersion.objects.filter(active=True)) == [local_model]
    assert not ModelVersionActivation.objects.exists()


@pytest.fixture
def older(local_model):
    """An inactive older version next to the active seed model."""
    artifact = bytes(local_model.artifact)
    return ModelVersion.objects.create(
        labels=local_model.labels,
        artifact=artifact,
        signature=selectors.artifact_signature(artifact),
        threshold=0.9,
    )


CHANGELIST = "/admin/orchestrator/modelversion/"


def test_the_admin_action_rolls_back_for_a_superuser(client, root, local_model, older):
    client.force_login(root)
    page = client.get(CHANGELIST).content.decode()
    assert "Activate (roll back to) the selected version" in page

    response = client.post(
        CHANGELIST, {"action": "activate", "_selected_action": [older.pk]}, follow=True
    )

    assert response.status_code == 200
    assert f"Local model v{older.pk} is now active (was v{local_model.pk})." in (
        response.content.decode()
    )
    assert routing_version() == older
    activation = ModelVersionActivation.objects.get()
    assert (activation.version, activation.previous, activation.actor) == (
        older,
        local_model,
        root,
    )
    # The switch is on record, read-only: who, from which version to which.
    history = client.get("/admin/orchestrator/modelversionactivation/")
    assert history.status_code == 200
    row = history.content.decode()
    assert all(part in row for part in ("root", f"v{local_model.pk}", f"v{older.pk}"))
    detail = f"/admin/orchestrator/modelversionactivation/{activation.pk}/change/"
    assert client.post(detail, {"note": "edited"}).status_code == 403


def test_the_admin_action_takes_exactly_one_version(client, root, local_model, older):
    client.force_login(root)
    response = client.post(
        CHANGELIST,
        {"action": "activate", "_selected_action": [older.pk, local_model.pk]},
        follow=True,
    )
    assert "Select exactly one version to activate." in response.content.decode()
    assert not ModelVersionActivation.objects.exists()


def test_the_admin_action_is_refused_without_the_change_permission(client, local_model, older):
    viewer = User.objects.create_user("vic", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(viewer)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "Activate (roll back to)" not in page.content.decode()

    client.post(CHANGELIST, {"action": "activate", "_selected_action": [older.pk]})

    assert list(ModelVersion.objects.filter(active=True)) == [local_model]
    assert not ModelVersionActivation.objects.exists()
    # Versions stay read-only for everyone.
    assert client.post(f"{CHANGELIST}{older.pk}/change/", {"threshold": 0.1}).status_code == 403


# --- the command -----------------------------------------------------------------------------


def test_the_command_prints_the_labels_both_evaluations_the_threshold_and_the_verdict(
    local_model, label_rows
):
    label_rows(JARGON + PLAIN)
    out = StringIO()
    call_command("retrain_router", "--target-misroute", "0.05", stdout=out)
    text = out.getvalue()
    version = ModelVersion.objects.get(active=True)
    assert "labels: 52 from people (reroute 0, review 52, audit 0), 0 distilled, 0 unmoved" in text
    assert f"candidate v{version.pk}: accuracy" in text
    assert f"active v{local_model.pk}: accuracy" in text
    assert f"threshold {version.threshold:.3f}: misroutes" in text
    assert "(target 5.0%)" in text
    held_out = version.metrics["labels"]["holdout"]
    assert f"model v{version.pk} activated: {held_out} held-out labels, too few to compare" in text


def test_the_command_prints_json_and_says_when_it_trained_nothing(local_model, label_rows):
    label_rows(PLAIN[:3])
    out = StringIO()
    call_command("retrain_router", "--json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["version"] is None
    assert payload["reason"] == "3 labels from people; retraining needs 10"
    assert payload["metrics"]["labels"]["human"] == 3

    out = StringIO()
    call_command("retrain_router", "--min-labels", "3", "--holdout", "0.9", "--json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["version"] == ModelVersion.objects.latest("created_at").pk
    assert {"candidate", "active", "gate", "threshold"} <= set(payload["metrics"])


# --- a fast start for new pools --------------------------------------------------------------

WHEN = ["since monday", "after the update"]


def gadget_rows(device, pool):
    return [(f"my {device} {symptom} {when}", pool) for symptom in SYMPTOMS for when in WHEN]


def test_new_pools_with_few_labels_get_thresholds_of_their_own_where_their_precision_holds(
    pools, label_rows, settings
):
    settings.ROUTER_RETRAIN_MIN_LABELS = 10
    settings.ROUTER_FAST_START_MIN_ACCEPTED = 10
    # 90%, not the default 96%: on 48 labels, half of them a coin flip, every pool's precision
    # together is far below 96% at any threshold, and a pool's own is shrunk towards it.
    settings.ROUTER_POOL_TARGET_PRECISION = 0.9
    settings.ROUTER_FAST_START_PRECISION = 0.9
    for slug in ("zorbit", "krell", "plumo", "vantix"):
        pools[slug] = pool_upsert(slug=slug, name=slug.capitalize(), description=f"{slug} gadgets")
    # 12 labels each for two new pools whose words are their own, and 24 that people split at
    # random between two more pools: nothing tells those two apart.
    mixed = gadget_rows("plumo beacon", "") + gadget_rows("vantix relay", "")
    coin = iter(itertools.cycle(["plumo", "vantix", "vantix", "plumo"]))
    label_rows(
        gadget_rows("zorbit hub", "zorbit")
        + gadget_rows("krell pad", "krell")
        + [(text, next(coin)) for text, _ in mixed]
    )

    result = model_version_retrain()

    version = result.version
    assert version is not None
    assert result.activated
    # 48 labels cannot show a 2% misroute rate for the model as a whole (50 routes at least)...
    assert version.threshold == 1.0
    figures = version.metrics["pools"]
    # ...but the two pools the model tells apart route on their own thresholds, measured out
    # of sample at 90% precision or more; the two it cannot tell apart do not.
    assert {"zorbit", "krell"} <= set(version.pool_thresholds)
    assert not {"plumo", "vantix"} & set(version.pool_thresholds)
    for slug in ("zorbit", "krell"):
        assert figures["per_pool"][slug]["precision"] >= 0.9
        assert figures["per_pool"][slug]["threshold"] == version.pool_thresholds[slug]

    routed = open_ticket("my zorbit hub glows purple then nothing this evening")
    assert (local_decision(routed).action, routed.pool) == ("route", pools["zorbit"])
    # Without an API key the LLM tiers are skipped: what the local tier passes goes to review.
    passed = open_ticket("my plumo beacon flickers at dusk this evening")
    assert local_decision(passed).action == "pass"
    assert passed.status == Ticket.Status.IN_REVIEW


def test_a_retraining_learns_from_the_local_tiers_unmoved_routes_but_chooses_no_threshold_on_them(
    local_model, label_rows
):
    label_rows(JARGON[:12])
    plain = ("I can't log in, it says my password is wrong", "My card keeps getting declined")
    routed = [open_ticket(text) for text in plain]
    assert [local_decision(ticket).action for ticket in routed] == ["route", "route"]

    result = model_version_retrain()

    labels = result.metrics["labels"]
    assert (labels["human"], labels["distilled"], labels["unmoved"]) == (12, 0, 2)
    # Only people's labels are held out for the gate and the version's threshold. The unmoved
    # routes train, but no threshold is chosen on them: they are the local tier's own answers,
    # which a model like it agrees with, right or wrong.
    assert labels["train"] + labels["holdout"] == 12
    assert result.metrics["threshold"]["labels_scored"] == 12
    assert result.metrics["pools"]["labels_scored"] == 12
    version = result.version
    assert version is not None
    assert version.training_examples == len(seed_examples()) + labels["train"] + 2


def test_retraining_is_due_when_the_labels_have_grown_enough_since_the_last_one(
    pools, label_rows, settings
):
    settings.ROUTER_RETRAIN_MIN_LABELS = 4
    settings.ROUTER_RETRAIN_NEW_LABELS = 8
    settings.ROUTER_RETRAIN_GROWTH = 1.0
    label_rows(PLAIN[:7])
    assert model_version_retrain_due() == (False, 7, 0)
    router_retrain_when_due_task()
    assert not ModelVersion.objects.exists()

    label_rows(PLAIN[7:8])
    assert model_version_retrain_due() == (True, 8, 0)
    router_retrain_when_due_task()
    assert ModelVersion.objects.count() == 1

    # Growth 1.0: the next retraining waits until the labels have doubled (8 more).
    label_rows(PLAIN[8:15])
    assert model_version_retrain_due() == (False, 15, 8)
    router_retrain_when_due_task()
    assert ModelVersion.objects.count() == 1
    label_rows(JARGON[:1])
    assert model_version_retrain_due() == (True, 16, 8)
    router_retrain_when_due_task()
    assert ModelVersion.objects.count() == 2
    assert model_version_retrain_due() == (False, 16, 16)


def test_retraining_with_the_embedding_tier_on_fits_the_candidate_and_folds_on_embeddings(
    local_model, label_rows, settings, monkeypatch
):
    if embeddings.embedder() is None:
        pytest.skip("the embedding model is not built in this environment")
    settings.ROUTER_EMBEDDINGS = True
    settings.ROUTER_TARGET_MISROUTE_RATE = 0.05
    label_rows(JARGON + PLAIN)
    embedded: list[int] = []
    real_embed = embeddings.Embedder.embed

    def counting(self, texts):
        embedded.append(len(texts))
        return real_embed(self, texts)

    # Counts the texts; the real model still embeds every one of them.
    monkeypatch.setattr(embeddings.Embedder, "embed", counting)
    result = model_version_retrain()

    version = result.version
    assert version is not None
    metrics = version.metrics
    assert metrics["embedding_model"] == embeddings.MODEL_ID
    assert metrics["threshold"]["with_embeddings"] == (metrics["embedding_weight"] > 0)
    assert (
        LocalClassifier.from_bytes(bytes(version.artifact)).embedding_weight
        == (metrics["embedding_weight"])
    )
    # The candidate and every fold model share one embedding of each text.
    texts = len(seed_examples()) + len(JARGON + PLAIN)
    assert sum(embedded) <= texts
