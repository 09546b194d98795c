"""The whole loop on real services: import -> featurize -> rounds on a Celery worker ->
next/label until the budget is gone -> export."""

import json
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from annotation.models import Item, Round
from tests.conftest import api_client, wait_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.worker


@pytest.fixture
def digits():
    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))[:400]
    return data.data[order] / 16.0, data.target[order]


def label_until_done(client, project_id, truth, *, timeout=240):
    """Label with the true labels through next/annotations; return (labels, final state)."""
    handed: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.post(f"/api/projects/{project_id}/next/").json()
        if body["state"] == "waiting":
            time.sleep(0.2)
            continue
        if body["state"] != "ok":
            return handed, body["state"]
        item = body["item"]
        handed.append(item["id"])
        response = client.post(
            f"/api/projects/{project_id}/annotations/",
            {"item": item["id"], "label": str(truth[item["external_id"]])},
            format="json",
        )
        assert response.status_code == 201, response.json()
    raise AssertionError("labeling did not finish in time")


@pytest.mark.parametrize("strategy", ["vote_entropy", "cal"])
def test_full_loop_spends_exactly_the_budget(worker, digits, strategy):
    X, y = digits
    staff = UserFactory(is_staff=True)
    client = api_client(staff)
    project = client.post(
        "/api/projects/",
        {
            "name": "digits",
            "labels": [str(d) for d in range(10)],
            "budget": 90,
            "acquisition": strategy,
            "batch_size": 20,
        },
        format="json",
    ).json()
    rows = [{"features": [float(v) for v in x], "external_id": f"d{i}"} for i, x in enumerate(X)]
    assert client.post(f"/api/projects/{project['id']}/items/", rows, format="json").json() == {
        "created": 400
    }
    truth = {f"d{i}": int(t) for i, t in enumerate(y)}
    annotator = MembershipFactory(project_id=project["id"]).user
    handed, state = label_until_done(api_client(annotator), project["id"], truth)

    assert state == "budget_exhausted"
    assert len(handed) == 90 and len(set(handed)) == 90
    body = client.get(f"/api/projects/{project['id']}/").json()
    assert (body["spent"], body["reserved"], body["labeled_count"]) == (90, 0, 90)
    rounds = list(Round.objects.filter(project_id=project["id"]).order_by("number"))
    assert rounds[0].cold_start
    trained = [r for r in rounds if not r.cold_start and r.status == "done"]
    assert trained, [(r.number, r.status, r.error) for r in rounds]
    assert all(r.shard_count >= 2 for r in trained)
    assert all(r.strategy == strategy and r.accuracy is not None for r in trained)
    export = client.get(f"/api/projects/{project['id']}/export/?format=jsonl")
    records = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert sorted(r["id"] for r in records) == sorted(handed)
    assert all(r["label"] == str(truth[r["external_id"]]) for r in records)
    assert {r["acquisition"] for r in records} >= {"cold_start", strategy}
    assert all(r["score"] is not None for r in records if r["acquisition"] == strategy)


def test_next_round_starts_while_annotators_keep_labeling(worker, digits):
    X, y = digits
    staff = UserFactory(is_staff=True)
    client = api_client(staff)
    project_id = client.post(
        "/api/projects/",
        {"name": "d", "labels": [str(d) for d in range(10)], "budget": 200, "batch_size": 20},
        format="json",
    ).json()["id"]
    rows = [{"features": [float(v) for v in x], "external_id": f"d{i}"} for i, x in enumerate(X)]
    client.post(f"/api/projects/{project_id}/items/", rows, format="json")
    wait_for(
        lambda: Item.objects.filter(project_id=project_id, status="queued").count() == 20,
        what="the cold-start round to queue a batch",
    )
    annotator = MembershipFactory(project_id=project_id).user
    labeler = api_client(annotator)
    # Take one: the free queue (19) falls under the low-water mark (one batch, 20).
    item = labeler.post(f"/api/projects/{project_id}/next/").json()["item"]
    wait_for(
        lambda: Round.objects.filter(project_id=project_id, status="done").count() >= 2,
        what="a second round",
    )
    # Meanwhile the annotator goes on: the item is still theirs to label.
    response = labeler.post(
        f"/api/projects/{project_id}/annotations/",
        {"item": item["id"], "label": str(y[int(item["external_id"][1:])])},
        format="json",
    )
    assert response.status_code == 201
    assert Item.objects.filter(project_id=project_id, status="queued").count() == 19 + 20
