"""A manager's whole job in the browser: the project list, a new project, an import and
the live dashboard."""

import json
import re
from decimal import Decimal

import pytest

from annotation.models import Annotation, Item, Project, Round
from tests.annotation.browser.conftest import sign_in
from tests.factories import (
    PASSWORD,
    ItemFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    queue,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff_page(live_server, page):
    user = UserFactory(is_staff=True)
    sign_in(page, live_server, user, PASSWORD)
    return user, page


def test_project_list_shows_budget_progress_and_new_project(live_server, staff_page):
    user, page = staff_page
    birds = ProjectFactory(name="birds", budget=Decimal(4))
    MembershipFactory(project=birds, user=user, role="manager")
    ProjectFactory(name="not-mine")  # staff see only their own projects (is_staff is the admin's)
    Project.objects.filter(name="birds").update(spent=Decimal(1))
    page.reload()
    bar = page.locator("#projects tr", has_text="birds").locator("[role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "25.0"
    assert page.locator("#new-project").is_visible()
    assert "not-mine" not in page.inner_text("#projects")


def test_project_list_without_projects_says_what_to_do(live_server, page):
    user = UserFactory()
    sign_in(page, live_server, user, PASSWORD)
    assert "Ask a project manager" in page.inner_text("#empty")
    assert page.locator("#new-project").count() == 0


def test_a_new_project_is_created_in_the_browser(live_server, staff_page):
    user, page = staff_page
    page.click("#new-project")
    page.fill("input[name=name]", "Reviews")
    page.fill("textarea[name=labels]", "good\nbad")
    page.fill("input[name=budget]", "50")
    page.select_option("select[name=acquisition]", "bald")
    page.click("#project-form button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project = Project.objects.get(name="Reviews")
    assert (project.labels, project.budget, project.acquisition) == (
        ["good", "bad"],
        Decimal(50),
        "bald",
    )
    assert page.url.endswith(f"/projects/{project.id}/")


def test_the_new_project_form_shows_the_api_validation_message(live_server, staff_page):
    user, page = staff_page
    page.goto(f"{live_server.url}/projects/new/")
    page.fill("input[name=name]", "Twice")
    page.fill("textarea[name=labels]", "same\nsame")
    page.click("#project-form button[type=submit]")
    message = page.locator('p.error[data-for="labels"]')
    page.wait_for_function(
        "document.querySelector('p.error[data-for=labels]').textContent.length > 0"
    )
    assert message.inner_text() == "Labels must be distinct."
    assert not Project.objects.filter(name="Twice").exists()


def manager_dashboard(live_server, page, **fields):
    project = ProjectFactory(**fields)
    user = MembershipFactory(project=project, role="manager").user
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/")
    return project, user


def test_a_file_is_imported_in_the_browser(live_server, page, tmp_path):
    project, user = manager_dashboard(live_server, page)
    upload = tmp_path / "items.jsonl"
    upload.write_text("\n".join(json.dumps({"text": f"row {i}"}) for i in range(3)))
    page.set_input_files("#import-file", str(upload))
    page.click("#import-form button[type=submit]")
    page.wait_for_function("document.getElementById('import-result').textContent.includes('3')")
    assert page.inner_text("#import-result").startswith("Imported 3 items")
    assert Item.objects.filter(project=project).count() == 3


def test_a_bad_row_is_named_and_nothing_is_imported(live_server, page, tmp_path):
    project, user = manager_dashboard(live_server, page)
    upload = tmp_path / "items.jsonl"
    upload.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"cost": 1}))
    page.set_input_files("#import-file", str(upload))
    page.click("#import-form button[type=submit]")
    page.wait_for_function("document.getElementById('import-result').textContent.includes('row 2')")
    assert "Nothing was imported" in page.inner_text("#import-result")
    assert not Item.objects.filter(project=project).exists()


def test_the_dashboard_updates_by_itself(live_server, page):
    project, user = manager_dashboard(live_server, page, budget=Decimal(5))
    assert page.inner_text("#labeled-count") == "0"
    items = ItemFactory.create_batch(2, project=project)
    queue(project, items)
    for item in items:
        Annotation.objects.create(item=item, annotator=user, label="cat", cost=item.cost)
    Item.objects.filter(pk__in=[i.pk for i in items]).update(status="labeled")
    page.wait_for_function("document.getElementById('labeled-count').textContent === '2'")
    assert page.locator("#burn svg polyline").count() == 1


def test_the_dashboard_shows_the_learning_curve_after_two_rounds(live_server, page):
    project = ProjectFactory()
    for number, (labels, accuracy) in enumerate([(10, 0.6), (20, 0.75)], start=1):
        Round.objects.create(
            project=project,
            number=number,
            strategy="margin",
            status="done",
            labeled_count=labels,
            accuracy=accuracy,
        )
    user = MembershipFactory(project=project, role="manager").user
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/")
    assert page.locator("#curve svg circle").count() == 2
    assert page.locator("#rounds tbody tr").count() == 2


def test_a_manager_pauses_then_resumes_the_project(live_server, page):
    project, user = manager_dashboard(live_server, page)
    page.click("#pause")
    page.wait_for_function("document.getElementById('pause').textContent === 'Resume'")
    assert Project.objects.get(pk=project.pk).paused is True
    page.wait_for_selector("#paused-state", state="visible")  # the live part says so too
    page.click("#pause")
    page.wait_for_function("document.getElementById('pause').textContent === 'Pause'")
    assert Project.objects.get(pk=project.pk).paused is False
    page.wait_for_selector("#paused-state", state="hidden")


def test_a_round_started_from_the_dashboard_is_shown(live_server, page):
    project, user = manager_dashboard(live_server, page)
    Item.objects.bulk_create(
        Item(project=project, vector=bytes(16), external_id=f"v{i}") for i in range(3)
    )
    page.click("#start-round")
    page.wait_for_function(
        "document.getElementById('control-result').textContent.startsWith('Round 1')"
    )
    assert Round.objects.get(project=project).number == 1
    page.wait_for_function("document.querySelectorAll('#rounds tbody tr td').length > 1")


def test_a_round_that_cannot_start_says_why(live_server, page):
    project, user = manager_dashboard(live_server, page)
    page.click("#start-round")
    page.wait_for_function(
        "document.getElementById('control-result').textContent.includes('featurized')"
    )
    assert page.inner_text("#control-result").startswith("Not done:")
    assert not Round.objects.filter(project=project).exists()
