"""The tiered routing pipeline: cheap tiers first, the LLM only where needed, review last.

Each tier decides or passes; every attempt becomes a DecisionDraft (saved as a RoutingDecision
by the service that ran the pipeline). The pipeline itself writes nothing to the database and
never raises for a provider failure: it falls through to the next tier and finally to review,
so a ticket is never dropped and never routed to a pool that is not active.
"""

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.orchestrator import cache
from apps.orchestrator.fields import fields_missing
from apps.orchestrator.local_model import OTHER
from apps.orchestrator.models import PromptVersion, RoutingDecision, RoutingRule
from apps.orchestrator.outcomes import DecisionDraft, LocalTier, ReviewReason, RoutingOutcome
from apps.orchestrator.pricing import cost_usd
from apps.orchestrator.prompts import text as prompt_text
from apps.orchestrator.prompts.prefix import prefix_examples, prefix_uncached_warn
from apps.orchestrator.providers.base import (
    ProviderCall,
    ProviderError,
    ProviderReply,
    RouterProvider,
    TokenCounter,
)
from apps.orchestrator.rules import rule_match
from apps.orchestrator.schema import REASON_STORED_CHARS, route_output_errors, route_tool
from apps.orchestrator.validation import input_validate
from apps.pools.models import Pool

logger = logging.getLogger(__name__)

Tier = RoutingDecision.Tier
Action = RoutingDecision.Action


@dataclass
class _LlmVerdict:
    output: dict[str, Any] | None  # valid tool input, or None when the tier failed
    failure: str = ""  # a ReviewReason when output is None


class RoutingPipeline:
    """The tiers, configured; build one per run (pools, rules and prompt may change)."""

    def __init__(
        self,
        *,
        pools: Sequence[Pool],
        rules: Sequence[RoutingRule],
        prompt: PromptVersion | None,
        local: LocalTier | None,
        provider: RouterProvider | None,
        write_cache: bool = True,
        clarify_allowed: bool = True,
        read_cache: bool = True,
    ) -> None:
        self.pools = {pool.slug: pool for pool in pools if pool.active}
        self.rules = rules
        self.prompt = prompt
        self.local = local
        self.provider = provider if prompt is not None else None
        self.write_cache = write_cache
        # Off to compare prompts offline: live traffic fills one version's cache, not another's.
        self.read_cache = read_cache
        self.clarify_allowed = clarify_allowed
        self.accept = settings.ROUTER_ACCEPT_THRESHOLD
        self.floor = settings.ROUTER_REVIEW_THRESHOLD

    # -- the flow -------------------------------------------------------------------------
    def run(self, text: str) -> RoutingOutcome:
        trail: list[DecisionDraft] = []
        started = time.perf_counter()
        try:
            validated = input_validate(text, max_chars=settings.ROUTER_MAX_INPUT_CHARS)
        except ValidationFailed as exc:
            trail.append(
                DecisionDraft(
                    Tier.VALIDATION,
                    Action.REVIEW,
                    error=exc.code,
                    valid=False,
                    reason=exc.message,
                    latency_ms=_ms(started),
                )
            )
            return self._review(trail, "", ReviewReason.REFUSED_INPUT)
        redacted = validated.redacted
        injection = validated.injection_suspected
        if injection or validated.redactions:
            trail.append(
                DecisionDraft(
                    Tier.VALIDATION,
                    Action.PASS,
                    latency_ms=_ms(started),
                    reason="suspected injection: " + ", ".join(validated.injection_signals)
                    if injection
                    else "",
                    raw_output=json.dumps(
                        {
                            "redactions": validated.redactions,
                            "injection_signals": validated.injection_signals,
                        }
                    ),
                )
            )

        outcome = self._rules(redacted, trail)
        if outcome is None and injection:
            # Text that tries to steer its routing goes to a person. Only an admin's rule, which
            # it cannot steer, may route it (docs/orchestrator.md, "Suspected injection"); no
            # tier that reads it may: not the cache (an LLM's decision on the same key), the
            # local model or an LLM.
            outcome = self._review(trail, redacted, ReviewReason.INJECTION)
        if outcome is None:
            outcome = self._cache(redacted, trail) or self._local(redacted, trail)
        if outcome is None:
            if self.provider is None:
                outcome = self._review(trail, redacted, ReviewReason.LLM_DISABLED)
            else:
                outcome = self._llm(redacted, trail)
        outcome.injection = injection
        outcome.redacted = redacted
        if outcome.action == "route":
            self._remember(outcome)
            outcome = self._clarify(outcome)
        outcome.deciding.ends_run = True
        return outcome

    # -- tiers ----------------------------------------------------------------------------
    def _rules(self, text: str, trail: list[DecisionDraft]) -> RoutingOutcome | None:
        started = time.perf_counter()
        rule = rule_match(text, [r for r in self.rules if r.pool.slug in self.pools])
        if rule is None:
            return None
        trail.append(
            DecisionDraft(
                Tier.RULES,
                Action.ROUTE,
                pool=self.pools[rule.pool.slug],
                confidence=1.0,
                rule=rule,
                reason=f"rule: {rule.name}",
                latency_ms=_ms(started),
            )
        )
        return RoutingOutcome("route", self.pools[rule.pool.slug], trail, text)

    def _cache_key(self, text: str) -> str | None:
        if self.prompt is None:
            return None
        return cache.decision_key(
            text=text, prompt_version=self.prompt.pk, pools=sorted(self.pools)
        )

    def _cache(self, text: str, trail: list[DecisionDraft]) -> RoutingOutcome | None:
        key = self._cache_key(text) if self.read_cache else None
        if key is None:
            return None
        started = time.perf_counter()
        hit = cache.decision_get(key)
        if hit is None or hit["pool"] not in self.pools:
            return None
        pool = self.pools[hit["pool"]]
        trail.append(
            DecisionDraft(
                Tier.CACHE,
                Action.ROUTE,
                pool=pool,
                confidence=hit["confidence"],
                prompt_version=self.prompt,
                reason=hit.get("reason", ""),
                raw_output=json.dumps(hit),
                latency_ms=_ms(started),
            )
        )
        return RoutingOutcome("route", pool, trail, text)

    def _local(self, text: str, trail: list[DecisionDraft]) -> RoutingOutcome | None:
        if self.local is None:
            return None
        started = time.perf_counter()
        prediction = self.local.classifier.predict(text)
        draft = DecisionDraft(
            Tier.LOCAL,
            Action.PASS,
            confidence=prediction.confidence,
            model=f"local-v{self.local.version.pk}",
            model_version=self.local.version,
            raw_output=json.dumps(prediction.output()),
            latency_ms=_ms(started),
        )
        trail.append(draft)
        candidates = {
            label: score for label, score in prediction.scores.items() if label in self.pools
        }
        threshold = self.local.threshold_for(prediction.label)
        if prediction.score < threshold:
            draft.reason = (
                f"below threshold {threshold:.2f}"
                if prediction.margin is None
                # Cut, not rounded: a margin of 0.996 is not "1.00 below threshold 1.00".
                else f"{'margin' if prediction.neighbour_gap is None else 'score'} "
                f"{math.floor(prediction.score * 100) / 100:.2f} below threshold {threshold:.2f}"
            )
            return None
        if prediction.label == OTHER:
            draft.action, draft.reason = Action.REVIEW, "no pool fits"
            return RoutingOutcome(
                "review",
                None,
                trail,
                text,
                review_reason=ReviewReason.NO_POOL_FITS,
                candidates=candidates,
            )
        if prediction.label not in self.pools:
            draft.reason = f"label {prediction.label!r} is not an active pool"
            return None
        draft.action, draft.pool = Action.ROUTE, self.pools[prediction.label]
        intent = self.local.intents.get(prediction.intent or "")
        if intent is not None and intent.pool_id == draft.pool.pk:
            # Recorded only while the intent is still the pool's (an admin may move it).
            draft.intent = intent
        return RoutingOutcome("route", draft.pool, trail, text, candidates=candidates)

    def _llm(self, text: str, trail: list[DecisionDraft]) -> RoutingOutcome:
        verdict = self._llm_ask(Tier.LLM, settings.ROUTER_MODEL, text, trail)
        if verdict.output is not None:
            decided = self._judge(verdict.output, trail, last_tier=False)
            if decided is not None:
                return decided
        # The router was unsure, or failed: the escalation model is the next tier.
        verdict = self._llm_ask(Tier.ESCALATION, settings.ESCALATION_MODEL, text, trail)
        if verdict.output is None:
            return self._review(trail, text, verdict.failure)
        decided = self._judge(verdict.output, trail, last_tier=True)
        assert decided is not None  # the last tier always decides
        return decided

    def _judge(
        self, output: dict[str, Any], trail: list[DecisionDraft], *, last_tier: bool
    ) -> RoutingOutcome | None:
        """Apply thresholds and consistency to a valid tool input. None: ask the larger model."""
        action, slug, confidence = output["action"], output["pool"], float(output["confidence"])
        draft = trail[-1]
        candidates = {slug: confidence} if slug else {}
        consistent = (action == "escalate" and slug is None) or (
            action in ("route", "clarify") and slug in self.pools
        )
        if not consistent:
            draft.valid, draft.error = False, "action and pool disagree or pool is not active"
            return self._review(trail, "", ReviewReason.CONSISTENCY, candidates)
        if confidence < self.floor:
            return self._review(trail, "", ReviewReason.LOW_CONFIDENCE, candidates)
        if confidence < self.accept:
            if last_tier:
                return self._review(trail, "", ReviewReason.LOW_CONFIDENCE, candidates)
            return None
        if action == "escalate":
            return self._review(trail, "", ReviewReason.NO_POOL_FITS, candidates)
        draft.pool = self.pools[slug]
        draft.action = Action.ROUTE
        return RoutingOutcome(
            "route",
            draft.pool,
            trail,
            "",
            candidates=candidates,
            missing_fields=list(output.get("missing_fields", [])),
        )

    def llm_call(self, model: str, text: str) -> ProviderCall:
        """The forced tool call that asks `model` to route the redacted `text`."""
        assert self.prompt is not None
        tool = route_tool(sorted(self.pools))
        cached = settings.ROUTER_PROMPT_CACHE
        pools = list(self.pools.values())
        system = prompt_text.system_prompt(
            template=self.prompt.text, few_shot=self.prompt.few_shot, pools=pools
        )
        examples = prefix_examples(
            examples=self.prompt.examples,
            pools=pools,
            tool=tool,
            system=system,
            model=model,
            target_tokens=settings.ROUTER_PROMPT_PREFIX_TOKENS if cached else 0,
            counter=self.provider if isinstance(self.provider, TokenCounter) else None,
        )
        content: str | list[dict[str, Any]] = prompt_text.user_turn(text)
        if examples:
            # The labelled examples open the user turn and end the cached prefix (tools,
            # system, this block); the customer's text follows the breakpoint.
            block: dict[str, Any] = {"type": "text", "text": examples}
            if cached:
                block["cache_control"] = {"type": "ephemeral"}
            content = [block, {"type": "text", "text": content}]
        return ProviderCall(
            model=model,
            system=system,
            tool=tool,
            messages=[{"role": "user", "content": content}],
            cache_prefix=cached,
        )

    def _read_reply(
        self, draft: DecisionDraft, reply: ProviderReply, *, batch: bool = False
    ) -> list[str]:
        """Record a reply on its draft; return its schema errors (empty when valid)."""
        self._record_reply(draft, reply, batch=batch)
        errors = (
            ["no route_ticket tool call in the answer"]
            if reply.tool_input is None
            else route_output_errors(reply.tool_input, sorted(self.pools))
        )
        if errors:
            draft.valid, draft.error = False, "; ".join(errors)[:500]
            return errors
        output = reply.tool_input
        assert isinstance(output, dict)  # the schema requires an object
        draft.action = Action(output["action"])  # the schema allows route, escalate, clarify
        draft.confidence = float(output["confidence"])
        draft.reason = str(output["reason"])[:REASON_STORED_CHARS]
        draft.pool = self.pools.get(output["pool"]) if output["pool"] else None
        return []

    def _llm_ask(
        self, tier: RoutingDecision.Tier, model: str, text: str, trail: list[DecisionDraft]
    ) -> _LlmVerdict:
        """One forced tool call, and one retry with the errors if the answer is invalid."""
        assert self.provider is not None
        call = self.llm_call(model, text)
        for attempt in (1, 2):
            draft = DecisionDraft(tier, Action.PASS, model=model, prompt_version=self.prompt)
            trail.append(draft)
            try:
                reply = self.provider.complete(call)
            except ProviderError as exc:
                draft.valid, draft.error, draft.latency_ms = False, str(exc)[:500], exc.latency_ms
                draft.attempts = exc.attempts
                if exc.kind == "malformed" and attempt == 1:
                    continue
                return _LlmVerdict(None, ReviewReason.PROVIDER_UNAVAILABLE)
            prefix_uncached_warn(call=call, reply=reply, prompt=self.prompt)
            errors = self._read_reply(draft, reply)
            if not errors:
                return _LlmVerdict(_tool_input(reply))
            call = ProviderCall(
                model=model,
                system=call.system,
                tool=call.tool,
                messages=[*call.messages, *self._retry_turns(reply, errors, set(self.pools))],
                cache_prefix=call.cache_prefix,
            )
        return _LlmVerdict(None, ReviewReason.INVALID_OUTPUT)

    def batch_outcome(
        self, outcome: RoutingOutcome, reply: ProviderReply | ProviderError
    ) -> RoutingOutcome:
        """Finish a text that the cheap tiers left doubtful with a batch answer (no retry)."""
        trail = [draft for draft in outcome.trail if draft.tier != Tier.REVIEW]
        for draft in trail:
            draft.ends_run = False
        draft = DecisionDraft(
            Tier.LLM, Action.PASS, model=settings.ROUTER_MODEL, prompt_version=self.prompt
        )
        trail.append(draft)
        if isinstance(reply, ProviderError):
            draft.valid, draft.error = False, str(reply)[:500]
            decided = self._review(trail, outcome.redacted, ReviewReason.PROVIDER_UNAVAILABLE)
        elif self._read_reply(draft, reply, batch=True):
            decided = self._review(trail, outcome.redacted, ReviewReason.INVALID_OUTPUT)
        else:
            judged = self._judge(_tool_input(reply), trail, last_tier=True)
            assert judged is not None
            decided = judged
        decided.redacted, decided.injection = outcome.redacted, outcome.injection
        decided.deciding.ends_run = True
        return decided

    def _retry_turns(
        self, reply: ProviderReply, errors: list[str], slugs: set[str]
    ) -> list[dict[str, Any]]:
        instructions = prompt_text.retry_instructions(errors, slugs)
        assistant = {
            "role": "assistant",
            "content": reply.content or [{"type": "text", "text": "(no answer)"}],
        }
        if reply.tool_use_id is not None:
            feedback: Any = [
                {
                    "type": "tool_result",
                    "tool_use_id": reply.tool_use_id,
                    "is_error": True,
                    "content": instructions,
                }
            ]
        else:
            feedback = instructions
        return [assistant, {"role": "user", "content": feedback}]

    @staticmethod
    def _record_reply(draft: DecisionDraft, reply: ProviderReply, *, batch: bool = False) -> None:
        draft.model = reply.model
        draft.raw_output = reply.raw_output
        draft.latency_ms = reply.latency_ms
        draft.attempts = reply.attempts
        draft.usage = reply.usage
        draft.cost = cost_usd(model=reply.model, usage=reply.usage, batch=batch)

    def _remember(self, outcome: RoutingOutcome) -> None:
        """Cache a route that an LLM tier decided, so the same text costs no call next time."""
        deciding = outcome.deciding
        if not self.write_cache or deciding.tier not in (Tier.LLM, Tier.ESCALATION):
            return
        key = self._cache_key(outcome.redacted)
        if key is None or outcome.pool is None or deciding.confidence is None:
            return
        cache.decision_set(
            key,
            {
                "pool": outcome.pool.slug,
                "confidence": deciding.confidence,
                "reason": deciding.reason,
                "tier": deciding.tier,
            },
        )

    def _clarify(self, outcome: RoutingOutcome) -> RoutingOutcome:
        assert outcome.pool is not None
        missing = fields_missing(
            required=list(outcome.pool.required_fields),
            text=outcome.redacted,
            reported_missing=outcome.missing_fields,
        )
        outcome.missing_fields = missing
        deciding = outcome.deciding
        if missing and self.clarify_allowed:
            outcome.action = "clarify"
            outcome.trail.append(
                DecisionDraft(
                    Tier.CLARIFY,
                    Action.CLARIFY,
                    pool=outcome.pool,
                    confidence=deciding.confidence,
                    reason="missing: " + ", ".join(missing),
                )
            )
        return outcome

    def _review(
        self,
        trail: list[DecisionDraft],
        text: str,
        reason: str,
        candidates: dict[str, float] | None = None,
    ) -> RoutingOutcome:
        trail.append(DecisionDraft(Tier.REVIEW, Action.REVIEW, reason=reason))
        return RoutingOutcome(
            "review", None, trail, text, review_reason=reason, candidates=candidates or {}
        )


def _tool_input(reply: ProviderReply) -> dict[str, Any]:
    assert isinstance(reply.tool_input, dict)  # only called once the schema check passed
    return dict(reply.tool_input)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
