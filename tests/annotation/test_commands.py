"""The management commands import_items, export_labels and create_project."""

import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from annotation.management.commands._progress import progress_bar
from annotation.models import BudgetGroup, Item, Membership, Project
from annotation.services.labeling import item_next_for
from annotation.services.queue import annotation_submit
from tests.factories import ItemFactory, UserFactory, queue

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_import_items_reads_jsonl_in_batches(project, tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [{"text": f"t{i}"} for i in range(5)])
    out, err = run("import_items", str(project.id), str(path), "--batch", "2")
    assert list(Item.objects.filter(project=project).values_list("text", flat=True)) == [
        f"t{i}" for i in range(5)
    ]
    assert "Imported 5 items" in out
    assert err == ""  # not a terminal: no progress bar


def test_import_items_names_the_bad_row_of_the_file_and_imports_nothing(project, tmp_path):
    rows = [{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": 4}]
    path = write_jsonl(tmp_path / "items.jsonl", rows)
    with pytest.raises(CommandError, match="row 4, field 'text'"):
        run("import_items", str(project.id), str(path), "--batch", "2")
    assert not Item.objects.filter(project=project).exists()


def test_import_items_takes_a_label_studio_export_with_its_labels(project, manager, tmp_path):
    task = {
        "id": 5,
        "data": {"text": "purr"},
        "annotations": [{"result": [{"type": "choices", "value": {"choices": ["cat"]}}]}],
    }
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([task]))
    run("import_items", str(project.id), str(path))
    item = Item.objects.get(project=project)
    assert (item.external_id, item.status, item.annotation.label) == ("5", "labeled", "cat")
    assert item.annotation.annotator == manager


@pytest.fixture
def two_labeled(project, annotator):
    items = [ItemFactory(project=project), ItemFactory(project=project)]
    queue(project, items)
    for label in ("cat", "dog"):
        item, _ = item_next_for(project=project, user=annotator)
        annotation_submit(project=project, user=annotator, item_id=item.id, label=label)
    return items


def test_export_labels_writes_the_jsonl_export(project, two_labeled, tmp_path):
    out_path = tmp_path / "labels.jsonl"
    out, _ = run("export_labels", str(project.id), "--format", "jsonl", "--out", str(out_path))
    records = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in records] == [
        (two_labeled[0].id, "cat"),
        (two_labeled[1].id, "dog"),
    ]
    assert "Exported 2 labeled items" in out


def test_export_labels_since_a_later_time_writes_nothing(project, two_labeled, tmp_path):
    out_path = tmp_path / "labels.jsonl"
    first, _ = run("export_labels", str(project.id), "--out", str(out_path))
    cursor = first.rsplit("--since: ", 1)[1].rstrip(").\n")
    run("export_labels", str(project.id), "--out", str(out_path), "--since", cursor)
    assert out_path.read_text() == ""


SPEC = """
name: Tickets
labels: [billing, bug]
budget: 100
strategy: bald
costs: {rule: flat, value: 2.5}
groups:
  - {name: en, share: 0.5}
members:
  - {username: boss, role: manager}
  - {username: worker, role: annotator, quota_daily: 30}
"""


def test_create_project_from_a_yaml_spec(db, tmp_path):
    UserFactory(username="boss")
    UserFactory(username="worker")
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    run("create_project", str(path))
    project = Project.objects.get(name="Tickets")
    assert (project.labels, project.budget, project.acquisition) == (
        ["billing", "bug"],
        Decimal(100),
        "bald",
    )
    assert (project.cost_rule, project.cost_value) == ("flat", Decimal("2.5"))
    assert BudgetGroup.objects.get(project=project).budget == Decimal(50)
    roles = dict(project.memberships.values_list("user__username", "role"))
    assert roles == {"boss": "manager", "worker": "annotator"}
    assert Membership.objects.get(project=project, user__username="worker").quota_daily == 30


def test_create_project_names_a_bad_field_and_creates_nothing(db, tmp_path):
    UserFactory(username="boss")
    UserFactory(username="worker")
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("strategy: bald", "strategy: guesswork"))
    with pytest.raises(CommandError, match="acquisition"):
        run("create_project", str(path))
    assert not Project.objects.exists()


def test_create_project_reads_a_json_spec(db, tmp_path):
    boss = UserFactory(username="boss")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "J", "labels": ["a", "b"], "budget": 5}))
    run("create_project", str(path), "--creator", "boss")
    assert Project.objects.get(name="J").memberships.get().user == boss


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "drawn"), [(Terminal(), True), (io.StringIO(), False)])
def test_progress_bar_is_drawn_only_on_a_terminal(stream, drawn):
    with progress_bar("importing", 3, stream=stream) as advance:
        advance(3)
    assert ("importing" in stream.getvalue()) is drawn
