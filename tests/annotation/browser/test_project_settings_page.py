"""A manager's whole job without curl: the settings page changes the project, its budget
groups and its members through the API's own calls, and shows the API's messages."""

from decimal import Decimal

import pytest

from annotation.models import BudgetGroup, Membership, Project
from tests.annotation.browser.conftest import sign_in
from tests.factories import PASSWORD, MembershipFactory, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def settings_page(live_server, page):
    project = ProjectFactory(name="birds", budget=Decimal(10))
    user = MembershipFactory(project=project, role="manager").user
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.pk}/settings/")
    return project, page


def saved(page, form: str) -> str:
    result = page.locator(f"#{form} [data-result]")
    page.wait_for_function(
        "(el) => el.textContent.startsWith('Saved') || el.classList.contains('error')",
        arg=result.element_handle(),
    )
    return result.inner_text()


def test_a_manager_changes_the_budget_from_the_dashboard(live_server, settings_page):
    project, page = settings_page
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.click("#settings-link")
    page.wait_for_url(f"{live_server.url}/projects/{project.pk}/settings/")
    assert page.input_value("#settings-form input[name=budget]") == "10.00"
    page.fill("#settings-form input[name=budget]", "25")
    page.click("#settings-form button[type=submit]")
    assert saved(page, "settings-form") == "Saved"
    assert Project.objects.get(pk=project.pk).budget == Decimal(25)


def test_a_bad_budget_shows_the_api_message_and_changes_nothing(settings_page):
    project, page = settings_page
    page.fill("#settings-form input[name=name]", "renamed")
    page.fill("#settings-form input[name=budget]", "-5")
    page.click("#settings-form button[type=submit]")
    assert saved(page, "settings-form").startswith("Not saved")
    message = page.inner_text('#settings-form p.error[data-for="budget"]')
    assert message == "Ensure this value is greater than or equal to 0."
    project.refresh_from_db()
    assert (project.name, project.budget) == ("birds", Decimal(10))


def test_a_group_is_added_through_the_table(settings_page):
    project, page = settings_page
    page.click("#add-group")
    row = page.locator("#groups tbody tr").last
    row.locator("input[name=group-name]").fill("news")
    row.locator("input[name=group-share]").fill("0.5")
    page.click("#groups-form button[type=submit]")
    assert saved(page, "groups-form") == "Saved"
    group = BudgetGroup.objects.get(project=project)
    assert (group.name, group.share, group.budget) == ("news", Decimal("0.5"), Decimal(5))


def test_a_member_is_added_by_username(settings_page):
    project, page = settings_page
    UserFactory(username="carol")
    page.fill("#member-form input[name=username]", "carol")
    page.select_option("#member-form select[name=role]", "annotator")
    page.fill("#member-form input[name=quota_daily]", "30")
    page.click("#member-form button[type=submit]")
    assert saved(page, "member-form") == "Saved: carol is annotator."
    member = Membership.objects.get(project=project, user__username="carol")
    assert (member.role, member.quota_total, member.quota_daily) == ("annotator", None, 30)
    assert "carol" in page.inner_text("#member-list")


def test_the_page_fits_a_phone(settings_page):
    project, page = settings_page
    BudgetGroup.objects.create(project=project, name="a rather long group name", budget=2)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.locator("#groups tbody tr").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
