"""Server-rendered pages of the chat app."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def demo_page(request: HttpRequest) -> HttpResponse:
    """A sample shop page with the chat widget embedded by one script tag."""
    return render(request, "demo.html")
