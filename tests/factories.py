from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from annotation.models import Item, Membership, Project, Round
from annotation.services.rounds import round_queue

PASSWORD = "correct horse battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(self, create, extracted, **kwargs):
        if create:
            self.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project {n}")
    labels = factory.LazyFunction(lambda: ["cat", "dog"])
    budget = Decimal(10)
    acquisition = "random"
    batch_size = 5
    kind = Project.Kind.TEXT
    # No audit slice unless a test asks for one (tests/annotation/services/test_audit.py):
    # tests of what a strategy picks see only its picks.
    audit_share = 0.0


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ANNOTATOR


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    project = factory.SubFactory(ProjectFactory)
    text = factory.Sequence(lambda n: f"item number {n}")
    cost = Decimal(1)


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def queue(project: Project, items: list[Item]) -> Round:
    """Queue `items` (in this order) through the real service, reserving their cost."""
    project.refresh_from_db()
    number = project.round + 1
    rnd = Round.objects.create(project=project, number=number, strategy="random")
    Project.objects.filter(pk=project.pk).update(round=number)
    round_queue(round_id=rnd.pk, picks=[(item.pk, 1.0 - i / 1000) for i, item in enumerate(items)])
    project.refresh_from_db()
    for item in items:
        item.refresh_from_db()
    rnd.refresh_from_db()
    return rnd
