"""The admin keeps the API's rules; the demo superuser exists only under DEBUG."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from annotation.admin import ItemAdmin, ProjectAdminForm
from annotation.models import Item
from tests.factories import ItemFactory, ProjectFactory, UserFactory, queue

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "labels", ['["cat", "cat"]', '["cat", 2]', '["cat", ""]', '"cat"', "[]", '{"a": 1}']
)
def test_admin_refuses_labels_that_are_not_distinct_strings(labels):
    form = ProjectAdminForm(data={"labels": labels, "out_of_scope_label": ""})
    assert not form.is_valid()
    assert "labels" in form.errors


def test_admin_accepts_distinct_string_labels():
    form = ProjectAdminForm(data={"labels": '["cat", "dog"]', "out_of_scope_label": "dog"})
    assert form.is_valid(), form.errors


def test_admin_refuses_an_out_of_scope_label_outside_the_labels():
    form = ProjectAdminForm(data={"labels": '["cat", "dog"]', "out_of_scope_label": "bird"})
    assert not form.is_valid()
    assert "out_of_scope_label" in form.errors


def readonly_fields_of(item) -> list[str]:
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    return ItemAdmin(Item, admin.site).get_readonly_fields(request, item)


def test_admin_keeps_cost_group_and_project_of_a_queued_item_read_only():
    project = ProjectFactory()
    item = ItemFactory(project=project)
    queue(project, [item])
    assert item.status == Item.Status.QUEUED
    assert {"cost", "group", "project"} <= set(readonly_fields_of(item))


def test_admin_keeps_cost_group_and_project_of_a_labeled_item_read_only():
    item = ItemFactory(status=Item.Status.LABELED)
    assert {"cost", "group", "project"} <= set(readonly_fields_of(item))


def test_admin_lets_an_unlabeled_items_cost_be_changed():
    assert "cost" not in readonly_fields_of(ItemFactory())


def test_demo_command_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("demo")
    assert not get_user_model().objects.filter(username="demo").exists()
