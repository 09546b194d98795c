"""Create the demo project: scikit-learn's handwritten digits (shipped inside the package)."""

import base64
import io

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.models import DEFAULT_ACQUISITION, Membership, Project
from annotation.services.imports import items_import
from annotation.services.projects import project_create

DEMO_NAME = "Handwritten digits (demo)"


def digit_data_uri(pixels) -> str:
    """An 8x8 digit (0..16 ink) as a PNG data URI, dark ink on white."""
    import numpy as np
    from PIL import Image

    grey = (255 - np.asarray(pixels, dtype=np.float64).reshape(8, 8) * 255 / 16).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class Command(BaseCommand):
    help = "Create the demo users and the digits demo project (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--budget", type=int, default=300)
        parser.add_argument("--acquisition", default=DEFAULT_ACQUISITION)

    def handle(self, *args, budget: int, acquisition: str, **options):
        # The demo/demo superuser is for a local demo only (bin/run sets DJANGO_DEBUG=1):
        # never on a database that other settings reach.
        if not settings.DEBUG:
            raise CommandError("The demo users are only created with DJANGO_DEBUG=1.")
        from sklearn.datasets import load_digits

        User = get_user_model()
        with transaction.atomic():
            demo, created = User.objects.get_or_create(
                username="demo", defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                demo.set_password("demo")
                demo.save()
            annotator, created = User.objects.get_or_create(username="annotator")
            if created:
                annotator.set_password("annotator")
                annotator.save()
        if Project.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write("The demo project exists already.")
            return
        digits = load_digits()
        rows = [
            {
                "image": digit_data_uri(pixels),
                "external_id": f"digit-{i}",
                "meta": {"source": "sklearn.datasets.load_digits", "index": i},
            }
            for i, pixels in enumerate(digits.data)
        ]
        project = project_create(
            creator=demo,
            name=DEMO_NAME,
            labels=[str(d) for d in range(10)],
            budget=budget,
            acquisition=acquisition,
            batch_size=20,
        )
        Membership.objects.get_or_create(
            project=project, user=annotator, defaults={"role": Membership.Role.ANNOTATOR}
        )
        created = items_import(project=project, rows=rows)
        self.stdout.write(f"Created the demo project {project.pk} with {created} digit images.")
