"""What the database holds after a run, counted: the other half of "nothing lost, counted".

`ledger(env)` runs a read-only query in a `manage.py shell` against the run's database (the
same settings as the servers) and returns plain counts and the breaches of each invariant,
so a fault test can say how many tickets went in and how many came out, and where.
"""

import json
import subprocess
import sys

from tests.servers import ROOT

QUERY = r"""
import json
from collections import Counter, defaultdict
from django.db.models import Count
from apps.chat.models import Conversation, ConversationEvent, Message
from apps.orchestrator.models import RoutingDecision
from apps.pools.models import Pool
from apps.tickets.models import Ticket

active = set(Pool.objects.filter(active=True).values_list("slug", flat=True))
tickets = list(Ticket.objects.values("id", "conversation_id", "status", "pool__slug"))
seqs = defaultdict(list)
for conversation_id, seq in ConversationEvent.objects.values_list("conversation_id", "seq"):
    seqs[conversation_id.hex].append(seq)
last = {c.hex: n for c, n in Conversation.objects.values_list("id", "last_seq")}
gaps = [c for c, n in last.items() if sorted(seqs.get(c, [])) != list(range(1, n + 1))]
duplicate_messages = (
    Message.objects.exclude(client_id=None)
    .values("conversation_id", "client_id")
    .annotate(n=Count("id"))
    .filter(n__gt=1)
    .count()
)
decisions = RoutingDecision.objects.filter(dry_run=False)
llm_failed = decisions.filter(tier__in=["llm", "escalation"], valid=False)
PROVIDER = r"^(timeout|connection|rate_limited|overloaded|server_error|bad_request|auth|malformed):"
# One request_id per committed routing run of a ticket.
runs = Counter(ticket for ticket, _ in set(decisions.values_list("ticket_id", "request_id")))
print(json.dumps({
    "conversations": len(last),
    "tickets": len(tickets),
    "by_status": dict(Counter(t["status"] for t in tickets)),
    "routing": [t["id"] for t in tickets if t["status"] == "routing"],
    "inactive_pool": [
        t["id"] for t in tickets if t["pool__slug"] and t["pool__slug"] not in active
    ],
    "tickets_per_conversation_max": max(
        Counter(t["conversation_id"] for t in tickets).values(), default=0
    ),
    "customer_messages": Message.objects.filter(sender="customer").count(),
    "customer_client_ids": {
        c.hex: sorted(i.hex for i in ids) for c, ids in _grouped(
            Message.objects.filter(sender="customer").exclude(client_id=None)
            .values_list("conversation_id", "client_id")
        ).items()
    },
    "duplicate_messages": duplicate_messages,
    "events": sum(len(v) for v in seqs.values()),
    "event_gaps": gaps,
    "last_seq": {c: n for c, n in last.items()},
    "decisions": decisions.count(),
    "routing_runs_per_ticket": dict(Counter(runs.values())),
    "llm_calls": decisions.filter(tier__in=["llm", "escalation"]).count(),
    "llm_attempts": sum(decisions.values_list("attempts", flat=True)),
    "provider_errors": dict(Counter(
        e.split(":", 1)[0]
        for e in llm_failed.filter(error__regex=PROVIDER).values_list("error", flat=True)
    )),
    "invalid_llm_answers": llm_failed.exclude(error__regex=PROVIDER).count(),
}))
"""

PRELUDE = r"""
from collections import defaultdict as _dd
def _grouped(pairs):
    out = _dd(list)
    for key, value in pairs:
        out[key].append(value)
    return out
"""


def ledger(env: dict[str, str]) -> dict:
    """Counts and invariant breaches of the database `env` points at."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRELUDE + QUERY],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
