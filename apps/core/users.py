"""Who acts in the staff tools: the type services take for an actor, and how an edge gets one."""

from typing import TypeAlias

from django.contrib.auth.models import User
from django.http import HttpRequest

from apps.core.errors import PermissionDenied

# A signed-in member of staff (agent, reviewer, manager, admin) acting through a service:
# Django's own user model (AUTH_USER_MODEL is not swapped). Services check its permissions.
StaffUser: TypeAlias = User


def staff_user(request: HttpRequest) -> StaffUser:
    """The request's signed-in user, for a service's `actor`; refused when nobody signed in."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in as a member of staff first.")
    return user
