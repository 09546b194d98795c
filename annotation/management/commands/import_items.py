"""`manage.py import_items PROJECT FILE`: import a JSONL, JSON, CSV or Label Studio file."""

from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.errors import ServiceError
from annotation.management.commands._progress import progress_bar
from annotation.models import Membership, Project
from annotation.services.formats import labelstudio_import, labelstudio_split
from annotation.services.imports import RowError, items_import, parse_upload


def _batches(rows, size: int):
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


class Command(BaseCommand):
    help = (
        "Import items into a project from a JSONL, JSON or CSV file, or a Label Studio JSON "
        "task export (with its labels and predictions). All or nothing: a bad row imports "
        "nothing and names the row and field. JSONL is read line by line in batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", type=int, help="The project id.")
        parser.add_argument("file", type=Path)
        parser.add_argument("--batch", type=int, default=10_000, help="Rows per batch.")
        parser.add_argument(
            "--user",
            help="Label Studio imports: the username the imported labels are recorded under "
            "(default: the project's first manager).",
        )

    def handle(self, *args, project: int, file: Path, batch: int, user: str | None, **options):
        try:
            target = Project.objects.get(pk=project)
        except Project.DoesNotExist as exc:
            raise CommandError(f"No project {project}.") from exc
        if not file.is_file():
            raise CommandError(f"No file {file}.")
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        try:
            created = self._import(target, file, batch, user)
        except ServiceError as exc:
            raise CommandError(f"{file}: {exc.message} (nothing imported)") from exc
        self.stdout.write(f"Imported {created} items into project {target.pk}.")

    def _import(self, project: Project, file: Path, batch: int, username: str | None) -> int:
        """The file read as a stream (services.imports.parse_upload, the API's parser), in
        batches under one transaction; a Label Studio task export goes whole to
        labelstudio_import."""
        with file.open("rb") as stream:
            rows = parse_upload(name=file.name, content_type="", file=stream)
            tasks, rows = labelstudio_split(rows)
            if tasks is not None:
                return labelstudio_import(
                    project=project, tasks=tasks, user=self._user(project, username)
                )
            created = 0
            with (
                transaction.atomic(),
                progress_bar(f"import {file.name}", None, stream=self.stderr._out) as advance,
            ):
                for chunk in _batches(rows, batch):
                    try:
                        created += items_import(project=project, rows=chunk)
                    except RowError as exc:  # the row number within the whole file
                        raise RowError(
                            created + exc.row, exc.field, exc.message.split(": ", 1)[1]
                        ) from None
                    advance(len(chunk))
        return created

    def _user(self, project: Project, username: str | None):
        memberships = Membership.objects.filter(project=project).select_related("user")
        if username:
            membership = memberships.filter(user__username=username).first()
        else:
            membership = memberships.filter(role=Membership.Role.MANAGER).order_by("id").first()
        if membership is None:
            raise CommandError(
                f"No member {username!r} in the project."
                if username
                else "The project has no manager to record the imported labels under: pass --user."
            )
        return membership.user
