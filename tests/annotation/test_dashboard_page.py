"""The dashboard's rounds table: the audit estimate with its interval, the strategy each
round used and why, and a failed round's error text for managers only."""

import pytest
from django.test import Client

from annotation.models import AUDIT, Annotation, Item, Round
from tests.factories import PASSWORD, ItemFactory

pytestmark = pytest.mark.django_db


def live_html(user, project) -> str:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    response = client.get(f"/projects/{project.pk}/live/")
    assert response.status_code == 200
    return response.content.decode()


def audit_item(project, annotator, *, predicted: str, label: str) -> Item:
    item = ItemFactory(
        project=project,
        status=Item.Status.LABELED,
        acquisition=AUDIT,
        queued_round=2,
        prediction={"labels": [[predicted, 0.9]]},
    )
    Annotation.objects.create(item=item, annotator=annotator, label=label, cost=1)
    return item


def test_a_round_shows_its_audit_accuracy_with_the_interval(project, manager, annotator):
    Round.objects.create(project=project, number=2, strategy="margin", status="done")
    for predicted in ("cat", "cat", "cat", "dog"):
        audit_item(project, annotator, predicted=predicted, label="cat")
    html = live_html(manager, project)
    assert "0.750 (0.30–0.95, n=4)" in html  # 3 of 4, Wilson 95%
    assert 'id="audit-curve"' in html


def test_a_round_says_which_strategy_it_used_and_why(project, manager):
    Round.objects.create(
        project=project,
        number=1,
        strategy="bald",
        strategy_reason="auto: drew bald (p=0.41) after rewards 0.62, 0.71",
        status="done",
    )
    html = live_html(manager, project)
    assert "auto: drew bald (p=0.41) after rewards 0.62, 0.71" in html


def test_an_annotator_sees_that_a_round_failed_but_not_the_exception(project, manager, annotator):
    Round.objects.create(
        project=project, number=1, strategy="margin", status="failed", error="KeyError: 'secret'"
    )
    assert "KeyError: &#x27;secret&#x27;" in live_html(manager, project)
    assert "secret" not in live_html(annotator, project)
