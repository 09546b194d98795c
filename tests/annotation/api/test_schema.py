"""Property-based API tests: every operation of the served OpenAPI schema, fed generated
valid and invalid requests (schemathesis), never answers with a 5xx.

The schema is read from /api/schema/ of the WSGI app itself and requests go through
schemathesis' in-process WSGI transport. They act as a staff user on a project that has
queued, leased and labeled items and budget groups, so `next`, `annotations`, `skip`,
`groups` and `export` run their real paths instead of stopping at a 404. Examples are
derandomized and bounded (see EXAMPLES): the whole module takes seconds.
"""

from decimal import Decimal
from pathlib import Path

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from annotation.models import BudgetGroup, Item
from annotation.services.labeling import item_next_for
from annotation.services.queue import annotation_submit
from tests.conftest import api_client
from tests.factories import (
    ItemFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    queue,
    token_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Hypothesis keeps a cache (no example database: see settings below) under var/, not in a
# .hypothesis folder wherever pytest was started.
set_hypothesis_home_dir(Path(django_settings.VAR_DIR) / "hypothesis")

EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 15}

APP = get_wsgi_application()
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", APP)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def has_inputs(operation) -> bool:
    """Whether the operation takes a query or a body (the security schemes' Authorization
    header and session cookie also appear as its parameters; they do not count)."""
    return bool(len(operation.query) or len(operation.body))


# Negative mode needs a query or a body to make invalid (schemathesis finds no invalid
# integer path id to send), so operations without one run in positive mode only.
CASES = [
    (operation, mode)
    for operation in OPERATIONS
    for mode in EXAMPLES
    if mode == GenerationMode.POSITIVE or has_inputs(operation)
]


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA.raw_schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def writable_fields(operation) -> tuple[bool, set[str]] | None:
    """(is the body a list?, the writable fields of its objects), or None if it declares none."""
    body = SCHEMA.raw_schema["paths"][operation.path][operation.method.lower()].get("requestBody")
    if not body or "application/json" not in body["content"]:
        return None
    node = _resolve(body["content"]["application/json"]["schema"])
    many = node.get("type") == "array"
    node = _resolve(node.get("items", {})) if many else node
    fields = {k for k, v in node.get("properties", {}).items() if not v.get("readOnly")}
    return (many, fields) if fields else None


def domain_cases(strategy, operation, domain: dict[str, list]):
    """Some cases as generated; the others with the undeclared fields dropped (the API
    refuses unknown fields, which the schema does not say, so most generated bodies stop
    there) and the fields named in `domain` (item ids, labels, usernames, budgets...) taken
    from the project's world, so that the cases reach the services' rules."""
    shape = writable_fields(operation)
    if shape is None:
        return strategy
    many, fields = shape

    def tidy(case, picks: dict):
        def one(body):
            if not isinstance(body, dict):
                return body
            kept = {k: v for k, v in body.items() if k in fields}
            kept.update({k: v for k, v in picks.items() if k in kept})
            return kept

        body = case.body
        case.body = [one(b) for b in body] if many and isinstance(body, list) else one(body)
        return case

    picks = st.fixed_dictionaries(
        {name: st.sampled_from(values) for name, values in domain.items()}
    )
    return st.one_of(strategy, st.tuples(strategy, picks).map(lambda pair: tidy(*pair)))


INT_COLUMN_MAX = 2**31 - 1  # PostgreSQL `integer`: a PositiveIntegerField's column


@pytest.fixture
def world():
    """A staff user managing a project with labeled, leased and queued items and two groups."""
    staff = UserFactory(is_staff=True)
    project = ProjectFactory(budget=Decimal(50), labels=["cat", "dog"])
    MembershipFactory(project=project, user=staff, role="manager")
    BudgetGroup.objects.create(project=project, name="a", budget=Decimal(10))
    BudgetGroup.objects.create(project=project, name="b", budget=Decimal(10))
    items = [ItemFactory(project=project, group="ab"[i % 2], meta={"n": i}) for i in range(12)]
    items += ItemFactory.create_batch(4, project=project)
    queue(project, items[:10])
    for label in ("cat", "dog"):
        item, _ = item_next_for(project=project, user=staff)
        annotation_submit(project=project, user=staff, item_id=item.id, label=label)
    item_next_for(project=project, user=staff)  # one item stays leased to the staff user
    return staff, project


def test_the_schema_lists_every_api_operation():
    paths = {operation.path for operation in OPERATIONS}
    assert {
        "/api/projects/",
        "/api/projects/{id}/",
        "/api/projects/{id}/items/",
        "/api/projects/{id}/next/",
        "/api/projects/{id}/annotations/",
        "/api/projects/{id}/skip/",
        "/api/projects/{id}/members/",
        "/api/projects/{id}/groups/",
        "/api/projects/{id}/rounds/",
        "/api/projects/{id}/export/",
    } <= paths


@pytest.mark.parametrize(
    ("operation", "mode"),
    CASES,
    ids=[f"{operation.label}-{mode.value}" for operation, mode in CASES],
)
def test_no_server_error(operation, mode, world):
    staff, project = world
    key = token_for(staff)
    headers = {"Authorization": f"Token {key}"}
    path_parameters = {"id": project.pk} if "{id}" in operation.path else None
    failures: list[str] = []

    strategy = operation.as_strategy(mode, path_parameters=path_parameters)
    if mode == GenerationMode.POSITIVE:
        domain = {
            "item": list(Item.objects.filter(project=project).values_list("id", flat=True)),
            "label": project.labels,
            "username": [staff.username, "nobody"],
            "labels": [["cat", "dog"], ["cat", "dog", "bird"], ["bird"]],
            "name": ["a", "b", "c"],
            "budget": [0, 3, 10, 75.5],
            "share": [None, 0.25, 0.5],
            "cost_value": [0.5, 1],
            "cost_floor": [0.01, 2],
            "out_of_scope_label": ["", "cat", "bird"],
        }
        strategy = domain_cases(strategy, operation, domain)

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is kept below
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
        except FailureGroup as exc:  # the message has a curl command to reproduce it
            failures.append(str(exc))
        # DELETE /api/auth/token/ revokes the token: give the same key back for what follows.
        Token.objects.get_or_create(user=staff, defaults={"key": key})

    check()
    assert failures == [], f"{len(failures)} 5xx answers; the first ones:\n" + "\n\n".join(
        failures[:3]
    )


def test_a_member_quota_too_large_for_its_column_is_a_400(world):
    staff, project = world
    for field in ("quota_total", "quota_daily"):
        response = api_client(staff).post(
            f"/api/projects/{project.pk}/members/",
            {"username": staff.username, "role": "annotator", field: INT_COLUMN_MAX + 1},
            format="json",
        )
        assert response.status_code == 400, (field, response.status_code)
