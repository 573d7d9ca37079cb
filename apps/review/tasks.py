"""Periodic learning from corrections: retrain the local router model (beat: daily, and every
few minutes when enough new labels arrived)."""

import logging

from celery import shared_task

from apps.review.training.retrain import (
    RetrainResult,
    model_version_retrain,
    model_version_retrain_when_due,
)

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def router_retrain_task() -> None:
    """Retrain the local model from the labels; it becomes active only if it does no worse."""
    _log(model_version_retrain())


@shared_task(acks_late=True)
def router_retrain_when_due_task() -> None:
    """Retrain the local model when enough labels arrived since the last retraining."""
    result = model_version_retrain_when_due()
    if result.version is not None:
        _log(result)


def _log(result: RetrainResult) -> None:
    logger.info(
        "router retraining: %s (%s)",
        f"{result.version}, {'activated' if result.activated else 'inactive'}"
        if result.version
        else "no candidate",
        result.reason,
    )
