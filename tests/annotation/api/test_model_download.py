"""GET /api/projects/{id}/model/: the latest trained round's ensemble, for managers."""

import pytest

from annotation.models import Round
from tests.conftest import api_client

pytestmark = pytest.mark.django_db


def model_of(user, project):
    return api_client(user).get(f"/api/projects/{project.id}/model/")


def test_the_latest_trained_round_is_downloaded_with_its_featurizer(project, manager):
    Round.objects.create(
        project=project, number=1, strategy="margin", model=b"first", status="done"
    )
    Round.objects.create(
        project=project, number=2, strategy="margin", model=b"second", status="done"
    )
    Round.objects.create(project=project, number=3, strategy="cold_start", status="done")
    response = model_of(manager, project)
    assert response.status_code == 200
    assert response.content == b"second"
    assert response["X-Model-Round"] == "2"
    assert response["X-Featurizer"] == project.text_featurizer
    assert "round-2.pt" in response["Content-Disposition"]


def test_before_any_trained_round_it_is_a_404_that_says_why(project, manager):
    response = model_of(manager, project)
    assert response.status_code == 404
    assert "No model yet" in response.json()["detail"]


def test_annotators_cannot_download_the_model(project, annotator):
    Round.objects.create(project=project, number=1, strategy="margin", model=b"weights")
    assert model_of(annotator, project).status_code == 403
