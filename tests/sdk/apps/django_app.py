"""A one-file Django project on the sdk, served by a real waitress: ``python django_app.py PORT``."""

from __future__ import annotations

import logging
import sys

import django
import waitress
from django.conf import settings
from django.http import JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False, SECRET_KEY="not-secret-test-only", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1"],
    MIDDLEWARE=["logharbor.sdk.middleware.DjangoRouteMiddleware"],
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings, as Django requires

from logharbor import sdk  # noqa: E402

sdk.configure(service="shop-django", env="test", instance="shop-django-1")
log = logging.getLogger("shop.django")


def order(request, order_id: str):  # type: ignore[no-untyped-def]
    with sdk.context(user_id=request.GET.get("user", "anon")):
        log.info("order looked up", extra={"order_id": order_id})
    return JsonResponse({"order_id": order_id})


def boom(request):  # type: ignore[no-untyped-def]
    raise RuntimeError("django kaput")


def healthz(request):  # type: ignore[no-untyped-def]
    return JsonResponse({"ok": True})


urlpatterns = [
    path("orders/<str:order_id>/", order),
    path("boom/", boom),
    path("healthz", healthz),
]

application = sdk.WSGIMiddleware(get_wsgi_application(), exclude_paths=["/healthz"])

if __name__ == "__main__":
    waitress.serve(application, host="127.0.0.1", port=int(sys.argv[1]), threads=4, _quiet=True)
