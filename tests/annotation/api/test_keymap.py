"""A project's own labeling keys (Project.keymap): set by managers, validated by field."""

import pytest

from annotation.models import Project
from annotation.selectors.projects import project_label_keys
from tests.conftest import api_client
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def set_keymap(user, project, keymap):
    return api_client(user).patch(f"/api/projects/{project.id}/", {"keymap": keymap}, format="json")


def test_a_manager_sets_the_key_map(project, manager):
    response = set_keymap(manager, project, {"cat": "c", "dog": "d"})
    assert response.status_code == 200, response.json()
    assert response.json()["keymap"] == {"cat": "c", "dog": "d"}
    assert Project.objects.get(pk=project.pk).keymap == {"cat": "c", "dog": "d"}


def test_an_annotator_cannot_set_the_key_map(project, annotator):
    assert set_keymap(annotator, project, {"cat": "c"}).status_code == 403
    assert Project.objects.get(pk=project.pk).keymap == {}


@pytest.mark.parametrize(
    "keymap",
    [
        {"cat": "cc"},  # not one character
        {"cat": ""},
        {"cat": " "},  # blank
        {"cat": "\n"},  # not printable
        {"cat": 7},  # not a string
        {"cat": "s"},  # skip
        {"cat": "S"},  # skip, in upper case
        {"cat": "u"},  # change the last label
        {"cat": "?"},  # the key map
        {"cat": "/"},  # the filter
        {"cat": "z"},  # zooming an image
        {"cat": "Enter"},
        {"cat": "Escape"},
        {"cat": "c", "dog": "c"},  # twice
        {"cat": "c", "dog": "C"},  # twice, in either case
        {"bird": "b"},  # not a label
        ["c", "d"],  # not an object
    ],
)
def test_a_bad_key_map_is_refused_naming_the_field(project, manager, keymap):
    response = set_keymap(manager, project, keymap)
    assert response.status_code == 400
    assert "keymap" in response.json()
    assert Project.objects.get(pk=project.pk).keymap == {}


def test_a_label_with_a_key_cannot_be_dropped_from_the_labels(manager, project):
    Project.objects.filter(pk=project.pk).update(keymap={"dog": "d"})
    response = api_client(manager).patch(
        f"/api/projects/{project.id}/", {"labels": ["cat"]}, format="json"
    )
    assert response.status_code == 400
    assert "keymap" in response.json()


def test_labels_outside_the_map_keep_their_default_key_unless_the_map_took_it(db):
    project = ProjectFactory(labels=["cat", "dog", "bird"], keymap={"dog": "1"})
    assert project_label_keys(project=project) == [("cat", ""), ("dog", "1"), ("bird", "3")]
