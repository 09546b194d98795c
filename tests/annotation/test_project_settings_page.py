"""The project settings page is for the project's managers: anyone else gets 404."""

import pytest
from django.test import Client

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_a_non_manager_gets_404(request, project, manager, who):
    user = request.getfixturevalue(who)
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    assert client.get(f"/projects/{project.pk}/settings/").status_code == 404
