"""A Django project under a real waitress process: ids, the route template from Django's resolver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sdk_helpers import AppProcess, free_port

pytest.importorskip("django")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    proc = AppProcess("django_app.py", tmp_path_factory.mktemp("django"), free_port())
    yield proc
    proc.stop()


def test_route_template_and_ids(app: AppProcess) -> None:
    response = httpx.get(app.url + "/orders/o-7/?user=u-7", headers={
        "X-Request-ID": "dj-1", "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "dj-1"
    looked, access = app.wait_for(lambda line: line.get("request_id") == "dj-1", 2)
    assert looked["service"] == "shop-django" and looked["logger"] == "shop.django"
    assert looked["user_id"] == "u-7" and looked["order_id"] == "o-7"
    assert {looked["trace_id"], access["trace_id"]} == {"5759e988bd862e3fe1be46a994272793"}
    assert access["http"]["route"] == "/orders/<str:order_id>/"
    assert access["http"]["path"] == "/orders/o-7/" and access["http"]["status"] == 200


def test_django_error_has_the_request_ids(app: AppProcess) -> None:
    response = httpx.get(app.url + "/boom/", headers={"X-Request-ID": "dj-boom"})
    assert response.status_code == 500
    lines = app.wait_for(lambda line: line.get("request_id") == "dj-boom", 2)
    errors = [line for line in lines if line.get("error")]
    assert len(errors) == 1
    assert errors[0]["logger"] == "django.request"
    assert errors[0]["error"]["type"] == "RuntimeError"
    assert errors[0]["error"]["message"] == "django kaput"
    access = lines[-1]
    assert access["logger"] == "logharbor.access" and access["http"]["status"] == 500
    assert access["http"]["route"] == "/boom/"
