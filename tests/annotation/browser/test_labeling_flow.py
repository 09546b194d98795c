"""The labeling page never makes anyone wait: prefetch, background sends that are never
dropped, leases kept while the page is open, suggestions, the key map and the filter."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Annotation, Item, Project
from tests.annotation.browser.conftest import sign_in
from tests.factories import PASSWORD, ItemFactory, MembershipFactory, ProjectFactory, queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXT = "document.querySelector('#item p.text')?.textContent"


def wait_text(page, expected):
    page.wait_for_function(f"{TEXT} === {expected!r}")


def wait_sent(page):
    page.wait_for_function("document.getElementById('sync').dataset.pending === '0'")


def wait_db(check, seconds=10.0):
    """Poll the database until `check()` is true (the page works in the background)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the database"
        time.sleep(0.1)


def open_page(
    live_server, page, *, labels=("cat", "dog", "bird"), n=3, prediction=None, **project_fields
):
    project = ProjectFactory(labels=list(labels), budget=10, **project_fields)
    user = MembershipFactory(project=project).user
    items = [ItemFactory(project=project, text=f"text {i}") for i in range(n)]
    if prediction:
        Item.objects.filter(project=project).update(prediction=prediction)
    if items:
        queue(project, items)
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    return project, user, items


def test_next_item_is_leased_ahead_and_shown_from_memory(live_server, page):
    project, user, items = open_page(live_server, page)
    wait_text(page, "text 0")
    wait_db(lambda: Item.objects.filter(leased_to=user).count() == 2)
    page.route("**/next/", lambda route: route.abort())  # no more fetching from here on
    page.keyboard.press("1")
    wait_text(page, "text 1")


def test_a_failed_send_is_shown_retried_and_not_dropped(live_server, page):
    project, user, items = open_page(live_server, page)
    wait_text(page, "text 0")
    failures = {"left": 2}

    def flaky(route):
        if failures["left"]:
            failures["left"] -= 1
            route.abort()
        else:
            route.continue_()

    page.route("**/annotations/", flaky)
    page.keyboard.press("2")
    wait_text(page, "text 1")
    page.wait_for_function("document.getElementById('sync').textContent.includes('not sent')")
    wait_sent(page)
    assert failures["left"] == 0
    assert Annotation.objects.get(item=items[0]).label == "dog"


def test_a_refused_label_is_shown_with_the_reason(live_server, page):
    project, user, items = open_page(live_server, page)
    wait_text(page, "text 0")
    page.route(
        "**/annotations/",
        lambda route: route.fulfill(
            status=409, content_type="application/json", body='{"detail": "Too late."}'
        ),
    )
    page.keyboard.press("1")
    page.wait_for_function("document.getElementById('sync').textContent.includes('Too late.')")
    wait_sent(page)
    assert not Annotation.objects.exists()


def test_the_lease_is_renewed_while_the_page_is_open(live_server, page):
    project, user, items = open_page(live_server, page, lease_seconds=15)
    wait_text(page, "text 0")
    wait_db(lambda: Item.objects.filter(leased_to=user).count() == 2)
    before = Item.objects.get(pk=items[0].pk).lease_expires_at
    with page.expect_request("**/lease/", timeout=10_000) as request:
        pass
    assert b'"renew"' in (request.value.post_data_buffer or b"")
    wait_db(lambda: Item.objects.get(pk=items[0].pk).lease_expires_at > before)


def test_leases_are_released_when_the_page_is_closed(live_server, page):
    project, user, items = open_page(live_server, page)
    wait_text(page, "text 0")
    wait_db(lambda: Item.objects.filter(leased_to=user).count() == 2)
    page.goto("about:blank")
    wait_db(lambda: not Item.objects.filter(leased_to=user).exists())
    assert Item.objects.filter(status="queued").count() == 3


def test_suggestions_are_shown_and_enter_accepts_the_top_one(live_server, page):
    project, user, items = open_page(
        live_server,
        page,
        show_predictions=True,
        prediction={"labels": [["bird", 0.8], ["cat", 0.15]]},
    )
    wait_text(page, "text 0")
    assert page.inner_text("#suggested") == "bird 80%cat 15%"
    page.keyboard.press("Enter")
    wait_text(page, "text 1")
    wait_sent(page)
    annotation = Annotation.objects.get(item=items[0])
    assert (annotation.label, annotation.suggestion_agreed) == ("bird", True)


def test_suggestions_stay_hidden_when_the_project_does_not_show_them(live_server, page):
    open_page(live_server, page, prediction={"labels": [["bird", 0.8]]})
    wait_text(page, "text 0")
    assert page.locator("#suggestion").is_hidden()


def test_question_mark_opens_the_key_map(live_server, page):
    open_page(live_server, page)
    wait_text(page, "text 0")
    page.keyboard.press("?")
    assert page.locator("#keymap").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#keymap").is_hidden()


def test_every_key_has_a_button_twin(live_server, page):
    open_page(live_server, page, show_predictions=True)
    wait_text(page, "text 0")
    keys_in_map = set(page.locator("#keymap kbd").all_inner_texts())
    keys_on_buttons = set(page.locator("button kbd").all_inner_texts())
    assert {"1", "2", "3"} <= keys_in_map <= keys_on_buttons


def test_a_skip_by_button_works_like_the_key(live_server, page):
    project, user, items = open_page(live_server, page)
    wait_text(page, "text 0")
    page.click("#skip")
    wait_text(page, "text 1")
    wait_sent(page)
    assert Item.objects.get(pk=items[0].pk).assignments.filter(status="skipped").exists()


def test_typing_filters_many_labels_and_enter_chooses(live_server, page):
    labels = [f"label{i:02d}" for i in range(11)] + ["zebra"]
    project, user, items = open_page(live_server, page, labels=labels)
    wait_text(page, "text 0")
    page.keyboard.press("/")
    page.keyboard.type("zeb")
    assert page.locator("button.label:visible").all_inner_texts() == ["zebra"]
    page.keyboard.press("Enter")
    wait_text(page, "text 1")
    wait_sent(page)
    assert Annotation.objects.get(item=items[0]).label == "zebra"


def test_the_session_count_and_budget_stay_in_view(live_server, page):
    open_page(live_server, page)
    wait_text(page, "text 0")
    page.keyboard.press("1")
    wait_text(page, "text 1")
    page.keyboard.press("2")
    wait_text(page, "text 2")
    wait_sent(page)
    assert page.inner_text("#session") == "2 labeled this session"
    page.wait_for_function("document.getElementById('budget').textContent === '2 / 10'")


def test_the_waiting_state_says_why_and_picks_up_by_itself(live_server, page):
    project, user, items = open_page(live_server, page, n=0)
    items = ItemFactory.create_batch(2, project=project)
    queue(project, items[:1])  # queued, and leased to someone else: the page must wait
    other = MembershipFactory(project=project).user
    Item.objects.filter(pk=items[0].pk).update(
        leased_to=other, lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    page.wait_for_function("document.getElementById('status').textContent.includes('choosing')")
    queue(project, items[1:])
    wait_text(page, items[1].text)


def test_two_tabs_never_show_the_same_item(live_server, page):
    project, user, items = open_page(live_server, page, n=4)
    wait_text(page, "text 0")
    wait_db(lambda: Item.objects.filter(leased_to=user).count() == 2)
    second = page.context.new_page()
    second.goto(page.url)
    second.wait_for_selector("#item p.text")
    assert second.inner_text("#item p.text") not in ("text 0", "text 1")


def test_given_spans_are_highlighted_as_text_never_markup(live_server, page):
    project = ProjectFactory(labels=["cat", "dog"], budget=5)
    user = MembershipFactory(project=project).user
    item = ItemFactory(
        project=project,
        text="call <b>me</b> at 5pm, at 5pm!",
        meta={"highlight": [[5, 14], "5pm", [99, 120], "nope"]},
    )
    queue(project, [item])
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    page.wait_for_selector("#item p.text mark")
    assert page.locator("#item p.text mark").all_inner_texts() == ["<b>me</b>", "5pm", "5pm"]
    assert page.locator("#item p.text b").count() == 0
    assert page.inner_text("#item p.text") == item.text


def test_a_paused_project_says_so_and_carries_on_when_resumed(live_server, page):
    project, user, items = open_page(live_server, page, n=0, paused=True)
    page.wait_for_function(
        "document.getElementById('status').textContent.includes('paused by a manager')"
    )
    queue(project, ItemFactory.create_batch(1, project=project, text="after the pause"))
    Project.objects.filter(pk=project.pk).update(paused=False)
    wait_text(page, "after the pause")


def test_a_project_key_map_binds_its_own_keys(live_server, page):
    project, user, items = open_page(live_server, page, keymap={"cat": "c", "dog": "D"})
    wait_text(page, "text 0")
    assert page.inner_text("button.label[data-label=dog] kbd") == "D"
    page.keyboard.press("d")  # in either case
    wait_text(page, "text 1")
    wait_sent(page)
    assert Annotation.objects.get(item=items[0]).label == "dog"


def test_a_manager_sees_what_queued_the_item_on_screen(live_server, page):
    project = ProjectFactory(labels=["cat", "dog"], budget=5)
    user = MembershipFactory(project=project, role="manager").user
    queue(project, [ItemFactory(project=project, text="text 0")])
    sign_in(page, live_server, user, PASSWORD)
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    wait_text(page, "text 0")
    assert "round 1, random, score 1.000" in page.inner_text("#item .meta")


def tiny_png() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_z_zooms_an_image_to_the_screen_and_back(live_server, page):
    project = ProjectFactory(labels=["cat", "dog"], budget=5, kind="image")
    user = MembershipFactory(project=project).user
    queue(project, [ItemFactory(project=project, text="", image=tiny_png())])
    sign_in(page, live_server, user, PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/projects/{project.id}/label/")
    page.wait_for_selector("#item img")
    small = page.locator("#item img").bounding_box()["width"]
    page.keyboard.press("z")
    assert page.get_attribute("#zoom", "aria-pressed") == "true"
    assert page.locator("#item img").bounding_box()["width"] > 2 * small
    page.click("#zoom")  # the button twin
    assert page.locator("#item img").bounding_box()["width"] == small
