"""`manage.py create_project SPEC.yaml`: a project, its budget groups and members from a file.

The spec (YAML, or JSON for a *.json file):

    name: Support tickets
    labels: [billing, bug, other]
    budget: 500
    strategy: margin            # the acquisition function (or `acquisition:`)
    costs: {rule: text_length, value: 1.5, floor: 0.2}   # or cost_rule / cost_value / ...
    groups:                     # budget groups: a share of the budget or an absolute one
      - {name: en, share: 0.6}
      - {name: de, budget: 100}
    members:                    # existing users; the first manager creates the project
      - {username: alice, role: manager}
      - {username: bob, role: annotator, quota_daily: 200}

and any other project field of the API (batch_size, ensemble_size, text_featurizer...).
All or nothing: a bad field creates nothing and is named.
"""

import json
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.api.serializers import (
    BudgetGroupSerializer,
    MembershipInSerializer,
    ProjectSerializer,
)
from annotation.errors import ServiceError
from annotation.models import Membership
from annotation.services.budgets import budget_groups_set
from annotation.services.projects import membership_set, project_create

COSTS = {"rule": "cost_rule", "value": "cost_value", "floor": "cost_floor"}


def _first_error(errors, prefix: str = "") -> str:
    """'field: message' of the first error of a DRF error structure."""
    if isinstance(errors, dict):
        key, value = next(iter(errors.items()))
        return _first_error(value, f"{prefix}.{key}" if prefix else str(key))
    if isinstance(errors, list) and errors and isinstance(errors[0], (dict, list)):
        index = next(i for i, e in enumerate(errors) if e)
        return _first_error(errors[index], f"{prefix}[{index}]")
    return f"{prefix}: {errors[0] if isinstance(errors, list) else errors}"


def load_spec(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        spec = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CommandError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from exc
    if not isinstance(spec, dict):
        raise CommandError(f"{path}: the spec must be a mapping of project fields.")
    return spec


def project_fields(spec: dict) -> tuple[dict, list, list]:
    """Split a spec into (project fields, groups, members), renaming the spec's aliases."""
    spec = dict(spec)
    groups = spec.pop("groups", []) or []
    members = spec.pop("members", []) or []
    if "strategy" in spec:
        spec["acquisition"] = spec.pop("strategy")
    costs = spec.pop("costs", None) or {}
    if not isinstance(costs, dict):
        raise CommandError("costs: must be a mapping of rule, value, floor.")
    for key, value in costs.items():
        if key not in COSTS:
            raise CommandError(f"costs.{key}: unknown; allowed: {', '.join(COSTS)}.")
        spec[COSTS[key]] = value
    if not isinstance(groups, list) or not isinstance(members, list):
        raise CommandError("groups and members: must be lists.")
    return spec, groups, members


class Command(BaseCommand):
    help = "Create a project with its labels, budget, costs, groups, strategy and members."

    def add_arguments(self, parser):
        parser.add_argument("spec", type=Path, help="A YAML (or JSON) spec file.")
        parser.add_argument(
            "--creator", help="Username of the creator (default: the first manager in members)."
        )

    def handle(self, *args, spec: Path, creator: str | None, **options):
        if not spec.is_file():
            raise CommandError(f"No file {spec}.")
        fields, groups, members = project_fields(load_spec(spec))
        project_in = ProjectSerializer(data=fields)
        if not project_in.is_valid():
            raise CommandError(_first_error(project_in.errors))
        groups_in = BudgetGroupSerializer(data=groups, many=True)
        if not groups_in.is_valid():
            raise CommandError(_first_error({"groups": groups_in.errors}))
        members_in = MembershipInSerializer(data=members, many=True)
        if not members_in.is_valid():
            raise CommandError(_first_error({"members": members_in.errors}))
        owner = self._creator(creator, members_in.validated_data)
        try:
            with transaction.atomic():
                project = project_create(creator=owner, **project_in.validated_data)
                for member in members_in.validated_data:
                    membership_set(project=project, **member)
                if groups_in.validated_data:
                    budget_groups_set(project=project, groups=groups_in.validated_data)
        except ServiceError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise CommandError(f"{where}{exc.message} (nothing created)") from exc
        self.stdout.write(f"Created project {project.pk} ({project.name}).")

    def _creator(self, username: str | None, members: list[dict]):
        if username is None:
            managers = [m["username"] for m in members if m["role"] == Membership.Role.MANAGER]
            if not managers:
                raise CommandError("members: name a manager, or pass --creator.")
            username = managers[0]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        return user
