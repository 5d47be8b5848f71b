"""The API description (OpenAPI) and the human docs page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def openapi_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse("{}", content_type="application/json")


def openapi_yaml(request: HttpRequest) -> HttpResponse:
    return HttpResponse("{}", content_type="application/yaml")


def docs_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("docs")


def home(request: HttpRequest) -> HttpResponse:
    return redirect("docs")
