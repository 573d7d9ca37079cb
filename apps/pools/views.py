"""Server-rendered pages of the desk: the shell the desk script fills from the REST API."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from apps.chat.services import staff_display_name
from apps.pools import selectors


@login_required
@ensure_csrf_cookie
def desk_page(request: HttpRequest) -> HttpResponse:
    """The agent desk (docs/desk.md): queues, one ticket, live over `/ws/desk/`."""
    user = request.user
    if not selectors.user_is_staff(user):
        raise PermissionDenied("The desk is for staff.")
    config = {
        "user": {
            "id": user.pk,
            "username": user.get_username(),
            "name": staff_display_name(user),
        },
        "supervisor": selectors.user_is_supervisor(user),
        "api": "/api/v1/",
        "socket": "/ws/desk/",
        "csrf_token": get_token(request),
    }
    return render(request, "desk/desk.html", {"desk_config": config})
