import pytest

from annotation.models import Annotation, Assignment, Item
from tests.annotation.browser.conftest import sign_in
from tests.factories import PASSWORD, ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_sent(page):
    """Labels go out in the background: wait until the page's outbox is empty."""
    page.wait_for_function("document.getElementById('sync').dataset.pending === '0'")


@pytest.fixture
def labeling(live_server, page):
    project = ProjectFactory(labels=["cat", "dog", "bird"], budget=3)
    user = MembershipFactory(project=project).user
    items = [
        ItemFactory(project=project, text="<img src=x onerror=alert(1)> first"),
        ItemFactory(project=project, text="second"),
        ItemFactory(project=project, text="third"),
    ]
    queue(project, items)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    return project, user, items, page


def test_item_text_is_shown_escaped(labeling):
    project, user, items, page = labeling
    page.wait_for_selector("#item p.text")
    assert page.inner_text("#item p.text") == items[0].text
    assert page.locator("#item img").count() == 0


def test_number_key_labels_and_moves_to_the_next_item(labeling):
    project, user, items, page = labeling
    page.wait_for_selector("#item p.text")
    page.keyboard.press("2")
    page.wait_for_function("document.querySelector('#item p.text')?.textContent === 'second'")
    wait_sent(page)
    assert Annotation.objects.get(item=items[0]).label == "dog"
    page.wait_for_function("document.querySelector('#budget').textContent === '1 / 3'")


def test_s_skips_the_item_for_this_annotator_only(labeling):
    """A skip is recorded for the one who skipped; the item stays queued for the others
    (issue 8) and is never shown again to this annotator."""
    project, user, items, page = labeling
    page.wait_for_selector("#item p.text")
    page.keyboard.press("s")
    page.wait_for_function("document.querySelector('#item p.text')?.textContent === 'second'")
    for expected in ("third", None):
        page.keyboard.press("1")
        if expected:
            page.wait_for_function(
                f"document.querySelector('#item p.text')?.textContent === '{expected}'"
            )
    page.wait_for_function("document.querySelector('#status').textContent.includes('again')")
    wait_sent(page)
    assert page.locator("#item p.text").count() == 0
    assert Assignment.objects.filter(item=items[0], user=user, status="skipped").count() == 1
    skipped = Item.objects.get(pk=items[0].pk)
    assert (skipped.status, skipped.leased_to_id, skipped.skip_count) == ("queued", None, 1)
    assert not Annotation.objects.filter(item=items[0]).exists()


def test_u_changes_the_last_label_at_no_cost(labeling):
    project, user, items, page = labeling
    page.wait_for_selector("#item p.text")
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#item p.text')?.textContent === 'second'")
    page.keyboard.press("u")
    page.wait_for_selector("button.label.chosen")
    page.keyboard.press("3")
    page.wait_for_function("document.querySelector('#item p.text')?.textContent === 'second'")
    wait_sent(page)
    assert Annotation.objects.get(item=items[0]).label == "bird"
    project.refresh_from_db()
    assert project.spent == 1


def test_budget_exhausted_is_announced(labeling):
    project, user, items, page = labeling
    for expected in ("second", "third"):
        page.wait_for_selector("#item p.text")
        page.keyboard.press("1")
        page.wait_for_function(
            f"document.querySelector('#item p.text')?.textContent === '{expected}'"
        )
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('#status').textContent.includes('budget')")
    assert page.inner_text("#budget") == "3 / 3"
    assert Annotation.objects.count() == 3


def test_anonymous_visitor_is_sent_to_sign_in(live_server, page):
    project = ProjectFactory()
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    assert "/accounts/login/" in page.url


def test_dashboard_shows_budget_and_rounds(live_server, page):
    project = ProjectFactory(budget=3)
    user = MembershipFactory(project=project, role="manager").user
    queue(project, ItemFactory.create_batch(2, project=project))
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/")
    figures = page.inner_text("#budget-figures")
    assert "reserved for the queue 2" in figures and "of 3" in figures
    assert page.locator("#rounds tbody tr").count() == 1
