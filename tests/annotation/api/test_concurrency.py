"""Many annotators labeling one project at once, over real HTTP.

The live server (pytest-django's `live_server`: Django's threaded WSGI server) runs every
request in its own thread with its own database connection, so `next` and `annotations`
calls really interleave in PostgreSQL. A separate thread reads the budget rows every
~10 ms to check `spent + reserved <= budget` at every instant it can see, not only at the
end.
"""

import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.db.models import Count

from annotation.models import Annotation, Assignment, BudgetGroup, Item, Project
from tests.factories import ItemFactory, MembershipFactory, ProjectFactory, queue, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ANNOTATORS = 32
LABELS = ["cat", "dog", "bird"]
RUN_SECONDS = 30  # a safety stop: a healthy run takes a few seconds


@dataclass
class Handout:
    user: str
    item: int
    asked_at: float
    got_at: float


@dataclass
class Submitted:
    user: str
    item: int
    label: str
    status: int
    sent_at: float
    done_at: float


@dataclass
class Journal:
    """What the annotators saw, appended to from their threads (list.append is atomic)."""

    handouts: list[Handout] = field(default_factory=list)
    submitted: list[Submitted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


def annotate(base: str, project_id: int, user: str, token: str, journal: Journal, seed: int):
    """One annotator: next, label, repeat until `next` says the budget is exhausted.

    Every fifth label is sent twice, to check that a repeat stays idempotent (200).
    """
    rng = random.Random(seed)
    deadline = time.monotonic() + RUN_SECONDS
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {token}"
        next_url = f"{base}/api/projects/{project_id}/next/"
        label_url = f"{base}/api/projects/{project_id}/annotations/"
        done = 0
        while time.monotonic() < deadline:
            asked = time.monotonic()
            response = session.post(next_url, timeout=20)
            got = time.monotonic()
            if response.status_code != 200:
                journal.errors.append(f"{user}: next -> {response.status_code} {response.text}")
                return
            body = response.json()
            if body["state"] == "budget_exhausted":
                journal.finished.append(user)
                return
            if body["state"] == "waiting":  # the last items are held by others
                time.sleep(0.01)
                continue
            if body["state"] != "ok" or body["item"] is None:
                journal.errors.append(f"{user}: unexpected next answer {body}")
                return
            item = body["item"]["id"]
            journal.handouts.append(Handout(user, item, asked, got))
            label = rng.choice(LABELS)
            repeats = 2 if done % 5 == 4 else 1
            for attempt in range(repeats):
                sent = time.monotonic()
                response = session.post(label_url, json={"item": item, "label": label}, timeout=20)
                journal.submitted.append(
                    Submitted(user, item, label, response.status_code, sent, time.monotonic())
                )
                expected = 201 if attempt == 0 else 200
                if response.status_code != expected:
                    journal.errors.append(
                        f"{user}: label #{attempt + 1} of item {item} -> "
                        f"{response.status_code} {response.text}"
                    )
                    return
            done += 1
        journal.errors.append(f"{user}: still labeling after {RUN_SECONDS} s")


class BudgetSampler(threading.Thread):
    """Reads the project's and its groups' budget rows every ~10 ms until stopped."""

    def __init__(self, project_id: int):
        super().__init__(daemon=True)
        self.project_id = project_id
        self.stop = threading.Event()
        self.samples = 0
        self.violations: list[str] = []

    def run(self):
        try:
            while not self.stop.is_set():
                rows = [
                    (
                        "project",
                        *Project.objects.values_list("budget", "spent", "reserved").get(
                            pk=self.project_id
                        ),
                    )
                ] + list(
                    BudgetGroup.objects.filter(project_id=self.project_id).values_list(
                        "name", "budget", "spent", "reserved"
                    )
                )
                for name, budget, spent, reserved in rows:
                    if spent > budget or spent + reserved > budget or spent < 0 or reserved < 0:
                        self.violations.append(
                            f"{name}: spent {spent} + reserved {reserved} > budget {budget}"
                        )
                self.samples += 1
                time.sleep(0.01)
        except Exception as exc:  # reported by the test, never swallowed
            self.violations.append(f"sampler failed: {exc!r}")
        finally:
            connection.close()


def run_annotators(live_server, project: Project, users) -> tuple[Journal, BudgetSampler]:
    journal = Journal()
    sampler = BudgetSampler(project.pk)
    sampler.start()
    threads = [
        threading.Thread(
            target=annotate,
            args=(live_server.url, project.pk, user.username, token_for(user), journal, n),
            daemon=True,
        )
        for n, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_SECONDS + 30)
    sampler.stop.set()
    sampler.join(timeout=5)
    assert not any(thread.is_alive() for thread in threads), "an annotator hung"
    return journal, sampler


def mixed_items(project: Project, n: int, groups: tuple[str, ...] = ("",)) -> list[Item]:
    """n items costing 1 or 2 (every third costs 2), spread round-robin over `groups`."""
    return [
        ItemFactory(
            project=project,
            cost=Decimal(2) if i % 3 == 0 else Decimal(1),
            group=groups[i % len(groups)],
        )
        for i in range(n)
    ]


def annotators_for(project: Project) -> list:
    return [MembershipFactory(project=project).user for _ in range(ANNOTATORS)]


def accepted(journal: Journal) -> dict[int, Submitted]:
    """Item id -> its accepted (201) label."""
    return {s.item: s for s in journal.submitted if s.status == 201}


def export_records(live_server, project: Project, manager) -> list[dict]:
    response = requests.get(
        f"{live_server.url}/api/projects/{project.pk}/export/?format=jsonl",
        headers={"Authorization": f"Token {token_for(manager)}"},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line]


def assert_labeled_exactly_once(journal: Journal, sampler: BudgetSampler) -> dict[int, Submitted]:
    assert journal.errors == []
    assert len(journal.finished) == ANNOTATORS, "every annotator should hear budget_exhausted"
    assert sampler.violations == []
    assert sampler.samples > 10, "the budget sampler barely ran"
    # Nobody was handed an item someone else held: with no skips and no expired leases an
    # item has exactly one holder, ever, and one Assignment row.
    holders = defaultdict(list)
    for handout in journal.handouts:
        holders[handout.item].append(handout)
    shared = {
        item: [(h.user, round(h.asked_at, 3), round(h.got_at, 3)) for h in handouts]
        for item, handouts in holders.items()
        if len({h.user for h in handouts}) > 1
    }
    assert shared == {}, f"items handed to two annotators (user, asked, answered): {shared}"
    by_item = Assignment.objects.values("item").annotate(n=Count("id")).filter(n__gt=1)
    assert list(by_item) == []
    # Nobody labeled an item twice.
    per_item = Counter(a.item_id for a in Annotation.objects.all())
    assert [item for item, n in per_item.items() if n > 1] == []
    created = Counter(s.item for s in journal.submitted if s.status == 201)
    assert [item for item, n in created.items() if n > 1] == [], "two 201s for one item"
    labels = accepted(journal)
    assert set(labels) == set(holders), "every handed-out item was labeled, and only those"
    return labels


def test_32_annotators_spend_exactly_the_budget_and_label_each_item_once(live_server):
    project = ProjectFactory(budget=Decimal(200), labels=LABELS, batch_size=5)
    manager = MembershipFactory(project=project, role="manager").user
    items = mixed_items(project, 300)
    queue(project, items)
    assert (project.spent, project.reserved) == (0, 200), "the queue should hold the budget"
    users = annotators_for(project)

    journal, sampler = run_annotators(live_server, project, users)

    labels = assert_labeled_exactly_once(journal, sampler)
    project.refresh_from_db()
    cost = {item.pk: item.cost for item in items}
    assert sum(cost[item] for item in labels) == project.spent == project.budget == 200
    assert project.reserved == 0
    assert Item.objects.filter(project=project, status="labeled").count() == len(labels)
    records = export_records(live_server, project, manager)
    assert len(records) == len(labels)
    assert {(r["id"], r["label"], r["annotator"]) for r in records} == {
        (s.item, s.label, s.user) for s in labels.values()
    }
    assert sum(Decimal(str(r["cost"])) for r in records) == project.budget


def test_32_annotators_respect_each_budget_groups_allocation(live_server):
    project = ProjectFactory(budget=Decimal(250), labels=LABELS, batch_size=5)
    manager = MembershipFactory(project=project, role="manager").user
    BudgetGroup.objects.create(project=project, name="a", budget=Decimal(80))
    BudgetGroup.objects.create(project=project, name="b", budget=Decimal(120))
    grouped = mixed_items(project, 240, groups=("a", "b"))
    ungrouped = mixed_items(project, 60)
    # Each group alone could spend far more than its allocation (120 items, ~160 of cost);
    # the ungrouped items take what the project budget leaves: 250 - 80 - 120 = 50.
    queue(project, grouped + ungrouped)
    reserved = dict(BudgetGroup.objects.filter(project=project).values_list("name", "reserved"))
    assert reserved == {"a": 80, "b": 120}
    assert project.reserved == 250
    users = annotators_for(project)

    journal, sampler = run_annotators(live_server, project, users)

    labels = assert_labeled_exactly_once(journal, sampler)
    items = {item.pk: item for item in grouped + ungrouped}
    spent_by_group = defaultdict(Decimal)
    for item_id in labels:
        spent_by_group[items[item_id].group] += items[item_id].cost
    assert dict(spent_by_group) == {"a": 80, "b": 120, "": 50}
    groups = {g.name: g for g in BudgetGroup.objects.filter(project=project)}
    assert {name: (g.spent, g.reserved) for name, g in groups.items()} == {
        "a": (80, 0),
        "b": (120, 0),
    }
    project.refresh_from_db()
    assert (project.spent, project.reserved) == (250, 0)
    records = export_records(live_server, project, manager)
    assert {(r["id"], r["label"], r["annotator"]) for r in records} == {
        (s.item, s.label, s.user) for s in labels.values()
    }
    exported = defaultdict(Decimal)
    for record in records:
        exported[record["group"]] += Decimal(str(record["cost"]))
    assert dict(exported) == {"a": 80, "b": 120, "": 50}
