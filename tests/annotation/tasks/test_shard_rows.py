"""What a shard task reads: exactly the pool's rows of its id range, whatever the path
(binary COPY on PostgreSQL, the ORM elsewhere), and the vectors as items_featurize
stored them."""

from decimal import Decimal

import numpy as np
import pytest

from annotation.models import Item
from annotation.services.rounds import _pool, _shard_rows, _vectors
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def featurized(project, X, **fields) -> list[Item]:
    return Item.objects.bulk_create(
        Item(project=project, vector=x.astype(np.float32).tobytes(), **fields) for x in X
    )


def test_shard_rows_are_the_pool_rows_of_the_range_in_id_order():
    project = ProjectFactory(kind="features")
    rng = np.random.default_rng(0)
    items = featurized(project, rng.normal(size=(6, 5)), cost=Decimal("2.50"), group="de")
    items += featurized(project, rng.normal(size=(4, 5)))
    Item.objects.filter(pk=items[1].pk).update(status=Item.Status.LABELED)
    Item.objects.filter(pk=items[2].pk).update(status=Item.Status.QUEUED)
    unfeaturized = Item.objects.create(project=project, features=[1.0] * 5)
    featurized(ProjectFactory(kind="features"), rng.normal(size=(3, 5)))  # another project
    start, stop = items[0].pk, unfeaturized.pk + 100

    rows = _shard_rows(project.pk, start, stop)

    expected = list(
        _pool(project.pk)
        .filter(id__gte=start, id__lt=stop)
        .order_by("id")
        .values_list("id", "vector", "cost", "group")
    )
    assert [r[0] for r in rows] == [i.pk for i in items if i.pk not in (items[1].pk, items[2].pk)]
    assert [(r[0], bytes(r[1]), r[2], r[3]) for r in rows] == [
        (r[0], bytes(r[1]), r[2], r[3]) for r in expected
    ]
    assert rows[0][2] == Decimal("2.50") and rows[0][3] == "de"
    assert rows[-1][2] == Decimal(1) and rows[-1][3] == ""


def test_shard_rows_of_an_empty_range_are_empty():
    project = ProjectFactory(kind="features")
    assert _shard_rows(project.pk, 1, 10**12) == []


def test_vectors_read_back_what_was_stored_as_a_writable_matrix():
    X = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
    matrix = _vectors([x.tobytes() for x in X])
    assert matrix.dtype == np.float32 and matrix.flags.writeable
    np.testing.assert_array_equal(matrix, X)
    assert _vectors([], 3).shape == (0, 3)
    with pytest.raises(ValueError, match="same length"):
        _vectors([X[0].tobytes(), X[1, :2].tobytes()])
