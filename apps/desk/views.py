"""The desk page at /desk/: rendered on the server, kept live over `/ws/desk/` (docs/desk.md)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.vary import vary_on_headers

from apps.desk import partials
from apps.pools import selectors as pool_selectors


@login_required
@ensure_csrf_cookie
@vary_on_headers("HX-Request")
def desk_page(request: HttpRequest) -> HttpResponse:
    """The agent desk: queues and one ticket. `?tab=&filter=&ticket=` say which; htmx asks for
    the main area only (HX-Request) when the agent moves between queues and tickets."""
    if not pool_selectors.user_is_staff(request.user):
        raise PermissionDenied("The desk is for staff.")
    query = request.GET
    view = partials.desk_view_parse(
        tab=query.get("tab"), filter=query.get("filter"), ticket=query.get("ticket")
    )
    context = partials.desk_page_context(user=request.user, view=view)
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
    response = render(request, "desk/_main.html" if partial else "desk/desk.html", context)
    response["HX-Push-Url"] = context["view"].url()
    return response
