"""`manage.py export_labels PROJECT --format jsonl --out FILE`: the labeled items, streamed."""

from datetime import UTC
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation.management.commands._progress import progress_bar
from annotation.models import Item, Project
from annotation.services.exports import EXPORT_FORMATS, export_stream


class Command(BaseCommand):
    help = (
        "Export a project's labeled items (JSONL, CSV, JSON or Label Studio tasks) to a file, "
        "streamed with flat memory. Prints the cursor to pass as --since next time."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", type=int, help="The project id.")
        parser.add_argument("--format", choices=list(EXPORT_FORMATS), default="jsonl")
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--since", help="Only labels given or changed after this ISO time.")

    def handle(self, *args, project: int, format: str, out: Path, since: str | None, **options):
        try:
            target = Project.objects.get(pk=project)
        except Project.DoesNotExist as exc:
            raise CommandError(f"No project {project}.") from exc
        start = None
        if since:
            start = parse_datetime(since)
            if start is None:
                raise CommandError("--since must be an ISO 8601 timestamp.")
            if timezone.is_naive(start):
                start = timezone.make_aware(start, UTC)
        until = timezone.now()
        labeled = Item.objects.filter(project=target, status=Item.Status.LABELED)
        if start is not None:
            labeled = labeled.filter(annotation__updated_at__gt=start)
        total = labeled.filter(annotation__updated_at__lte=until).count()
        with out.open("w", encoding="utf-8", newline="") as sink:
            with progress_bar(f"export {out.name}", total, stream=self.stderr._out) as advance:
                for chunk in export_stream(project=target, fmt=format, since=start, until=until):
                    sink.write(chunk)
                    advance(chunk.count("\n"))  # about one line per record
        self.stdout.write(
            f"Exported {total} labeled items of project {target.pk} to {out} "
            f"(cursor for --since: {until.isoformat()})."
        )
