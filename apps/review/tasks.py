"""Periodic learning from corrections: retrain the local router model (beat: daily)."""

import logging

from celery import shared_task

from apps.review.training.retrain import model_version_retrain

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def router_retrain_task() -> None:
    """Retrain the local model from the labels; it becomes active only if it does no worse."""
    result = model_version_retrain()
    logger.info(
        "router retraining: %s (%s)",
        f"{result.version}, {'activated' if result.activated else 'inactive'}"
        if result.version
        else "no candidate",
        result.reason,
    )
