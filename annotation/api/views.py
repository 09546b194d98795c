"""REST API. Each view validates, calls one service or selector, and serializes."""

from datetime import UTC, datetime

from django.db.models import Count, Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.filters import ORDERING, ItemCursorPagination, ItemFilter
from annotation.api.serializers import (
    AnnotationInSerializer,
    BudgetGroupSerializer,
    ItemOutSerializer,
    LeaseInSerializer,
    MembershipInSerializer,
    MembershipOutSerializer,
    NextInSerializer,
    ProjectSerializer,
    RoundSerializer,
    SkipInSerializer,
    WebhookDeliverySerializer,
    WebhookInSerializer,
    WebhookOutSerializer,
    item_public,
)
from annotation.api.uploads import JSONParser
from annotation.models import Item, Membership, Project
from annotation.selectors.items import item_list, item_predictions
from annotation.selectors.projects import project_for_member, project_list_for
from annotation.selectors.rounds import project_featurizer_name, round_latest_model, round_list
from annotation.services.budgets import budget_groups_set
from annotation.services.exports import CURSOR_HEADER, EXPORT_FORMATS, export_stream, stream_jsonl
from annotation.services.formats import labelstudio_import, labelstudio_split
from annotation.services.imports import items_import, parse_upload
from annotation.services.labeling import item_next_for, item_skip
from annotation.services.projects import membership_set, project_create, project_update
from annotation.services.queue import (
    annotation_submit,
    item_lease_renew,
    item_release,
    items_skipped_return,
)
from annotation.services.rounds import round_start_now
from annotation.services.webhooks import webhook_create

MANAGER = Membership.Role.MANAGER


def project_for(request, pk: int, *, manager: bool = False) -> Project:
    """The project if the caller may see it: outsiders get 404 (its existence stays
    hidden), annotators get 403 where a manager is needed."""
    project = project_for_member(pk=pk, user=request.user)
    if project is None or project.role is None:
        raise Http404("No such project.")
    if manager and project.role != MANAGER:
        raise PermissionDenied("Only the project's managers may do this.")
    return project


def _with_counts(project: Project) -> Project:
    counts = Item.objects.filter(project=project).aggregate(
        item_count=Count("id"),
        labeled_count=Count("id", filter=Q(status=Item.Status.LABELED)),
        featurized_count=Count("id", filter=Q(vector__isnull=False)),
        featurize_failed_count=Count("id", filter=~Q(featurize_error="")),
    )
    for name, value in counts.items():
        setattr(project, name, value)
    return project


class ProjectListView(APIView):
    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = project_list_for(user=request.user)
        return Response(ProjectSerializer(projects, many=True).data)

    @extend_schema(request=ProjectSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        if not (request.user.is_staff or request.user.has_perm("annotation.add_project")):
            raise PermissionDenied("Only staff (or users allowed to add projects) may do this.")
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = project_create(creator=request.user, **serializer.validated_data)
        return Response(ProjectSerializer(_with_counts(project)).data, status=201)


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk: int):
        project = project_for(request, pk)
        return Response(ProjectSerializer(_with_counts(project)).data)

    @extend_schema(request=ProjectSerializer, responses=ProjectSerializer)
    def patch(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        serializer = ProjectSerializer(project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        project = project_update(project=project, **serializer.validated_data)
        return Response(ProjectSerializer(_with_counts(project)).data)


class ItemsView(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    upload_limit_setting = "ANNOTATION_MAX_IMPORT_BYTES"  # annotation.api.uploads

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=[c for c, _ in Item.Status.choices], required=False
            ),
            OpenApiParameter("group", str, required=False),
            OpenApiParameter("external_id", str, required=False),
            OpenApiParameter("round", int, required=False, description="The queuing round."),
            OpenApiParameter("labeled_by", str, required=False, description="A username."),
            OpenApiParameter("featurized", bool, required=False),
            OpenApiParameter(
                "ordering",
                str,
                required=False,
                description="Comma-separated, '-' for descending: " + ", ".join(ORDERING.values()),
                examples=[OpenApiExample("best first", value="-score")],
            ),
            OpenApiParameter(
                "pagination",
                str,
                enum=["page", "cursor"],
                required=False,
                description="cursor: follow `next` links, constant time at any depth.",
            ),
        ],
        responses=ItemOutSerializer(many=True),
    )
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        filters = ItemFilter(request.query_params, queryset=item_list(project=project))
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        items = filters.qs
        if request.query_params.get("pagination") == "cursor":
            paginator = ItemCursorPagination(ordering=filters.order_fields())
        else:
            paginator = PageNumberPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(ItemOutSerializer(page, many=True).data)

    @extend_schema(
        request={"application/json": {"type": "array", "items": {"type": "object"}}},
        responses={201: inline_serializer("ImportResult", {"created": serializers.IntegerField()})},
    )
    def post(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            rows = parse_upload(
                name=upload.name, content_type=upload.content_type or "", file=upload
            )
        elif isinstance(request.data, list):
            rows = request.data
        else:
            raise ValidationError(
                {"items": ["Send a JSON list of items, or a multipart 'file' (JSONL or CSV)."]}
            )
        tasks, rows = labelstudio_split(rows)
        if tasks is not None:  # a Label Studio task export: items, labels, predictions
            created = labelstudio_import(project=project, tasks=tasks, user=request.user)
        else:
            created = items_import(project=project, rows=rows)
        return Response({"created": created}, status=201)


NextOut = inline_serializer(
    "NextTask",
    {
        "item": serializers.DictField(allow_null=True),
        "state": serializers.ChoiceField(
            ["ok", "waiting", "budget_exhausted", "pool_exhausted", "quota_reached", "paused"]
        ),
        "spent": serializers.FloatField(),
        "budget": serializers.FloatField(),
    },
)


def next_answer(project: Project, user, exclude: tuple[int, ...] = ()) -> dict:
    item, state = item_next_for(project=project, user=user, exclude=exclude)
    return {
        "item": (
            item_public(
                item,
                suggestions=project.show_predictions,
                provenance=project.role == MANAGER,
            )
            if item is not None
            else None
        ),
        "state": state,
        "spent": float(project.spent),
        "budget": float(project.budget),
    }


class NextView(APIView):
    @extend_schema(request=NextInSerializer, responses=NextOut)
    def post(self, request, pk: int):
        project = project_for(request, pk)
        data = NextInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exclude = tuple(data.validated_data["exclude"])
        return Response(next_answer(project, request.user, exclude))


class AnnotationsView(APIView):
    @extend_schema(
        request=AnnotationInSerializer,
        responses={
            201: inline_serializer(
                "AnnotationOut",
                {
                    "id": serializers.IntegerField(),
                    "item": serializers.IntegerField(),
                    "label": serializers.CharField(),
                    "spent": serializers.FloatField(),
                    "budget": serializers.FloatField(),
                },
            )
        },
    )
    def post(self, request, pk: int):
        project = project_for(request, pk)
        data = AnnotationInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation, created = annotation_submit(
            project=project,
            user=request.user,
            item_id=data.validated_data["item"],
            label=data.validated_data["label"],
        )
        body = {
            "id": annotation.id,
            "item": annotation.item_id,
            "label": annotation.label,
            "spent": float(project.spent),
            "budget": float(project.budget),
        }
        if data.validated_data["next"]:
            body["next"] = next_answer(project, request.user)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipView(APIView):
    @extend_schema(request=SkipInSerializer, responses={200: ItemOutSerializer})
    def post(self, request, pk: int):
        project = project_for(request, pk)
        data = SkipInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = item_skip(project=project, user=request.user, item_id=data.validated_data["item"])
        return Response({"item": item.id, "status": item.status})


class LeaseView(APIView):
    """Keep or give back the item you hold: the labeling page renews its lease while it
    is open and visible, and releases it when it is closed."""

    @extend_schema(
        request=LeaseInSerializer,
        responses=inline_serializer(
            "LeaseOut",
            {
                "item": serializers.IntegerField(),
                "lease_expires_at": serializers.DateTimeField(allow_null=True),
            },
        ),
    )
    def post(self, request, pk: int):
        project = project_for(request, pk)
        # The page releases with navigator.sendBeacon, which cannot set headers: its form
        # body carries the CSRF token, checked by the session authentication, not a field.
        fields = request.data  # not an object: the serializer answers 400
        if isinstance(fields, dict):
            fields = {k: v for k, v in fields.items() if k != "csrfmiddlewaretoken"}
        data = LeaseInSerializer(data=fields)
        data.is_valid(raise_exception=True)
        action = item_lease_renew if data.validated_data["action"] == "renew" else item_release
        item = action(project=project, user=request.user, item_id=data.validated_data["item"])
        return Response({"item": item.id, "lease_expires_at": item.lease_expires_at})


class SkippedReturnView(APIView):
    """Managers: return every skipped item to the pool (a later round may queue it)."""

    @extend_schema(
        request=None,
        responses=inline_serializer("ReturnedOut", {"returned": serializers.IntegerField()}),
    )
    def post(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        return Response({"returned": items_skipped_return(project=project)})


class MembersView(APIView):
    @extend_schema(responses=MembershipOutSerializer(many=True))
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        members = project.memberships.select_related("user").order_by("user__username")
        return Response(MembershipOutSerializer(members, many=True).data)

    @extend_schema(request=MembershipInSerializer, responses={201: MembershipOutSerializer})
    def post(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        data = MembershipInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_set(project=project, **data.validated_data)
        return Response(MembershipOutSerializer(membership).data, status=201)


class GroupsView(APIView):
    """Budget groups: a share or an absolute amount of the budget for each item `group`."""

    @extend_schema(responses=BudgetGroupSerializer(many=True))
    def get(self, request, pk: int):
        project = project_for(request, pk)
        return Response(BudgetGroupSerializer(project.budget_groups.all(), many=True).data)

    @extend_schema(
        request=BudgetGroupSerializer(many=True), responses=BudgetGroupSerializer(many=True)
    )
    def put(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        data = BudgetGroupSerializer(data=request.data, many=True)
        data.is_valid(raise_exception=True)
        groups = budget_groups_set(project=project, groups=data.validated_data)
        return Response(BudgetGroupSerializer(groups, many=True).data)


class RoundsView(APIView):
    @extend_schema(responses=RoundSerializer(many=True))
    def get(self, request, pk: int):
        project = project_for(request, pk)
        rounds = RoundSerializer(
            round_list(project=project), many=True, context={"manager": project.role == MANAGER}
        )
        return Response(rounds.data)

    @extend_schema(request=None, responses={201: RoundSerializer})
    def post(self, request, pk: int):
        """Managers: start a round now, however long the queue (409 says why none can)."""
        project = project_for(request, pk, manager=True)
        started = round_start_now(project=project)
        rnd = next(r for r in round_list(project=project) if r.pk == started.pk)
        return Response(RoundSerializer(rnd, context={"manager": True}).data, status=201)


# --- export -------------------------------------------------------------------------------


def _since(request) -> datetime | None:
    """`?since=`: an ISO 8601 timestamp (or the X-Export-Cursor of an earlier export)."""
    raw = request.query_params.get("since")
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))  # a '+' in a query string reads as ' '
    except ValueError:
        value = None
    if value is None:
        raise ValidationError(
            {"since": ["Must be an ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z."]}
        )
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


class ExportView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), required=False),
            OpenApiParameter(
                "since",
                str,
                required=False,
                description="Only labels given or changed after this ISO 8601 timestamp; "
                f"pass the {CURSOR_HEADER} header of the previous export.",
                examples=[OpenApiExample("since", value="2026-01-31T12:00:00+00:00")],
            ),
        ],
        responses={(200, "application/x-ndjson"): {"type": "string"}},
    )
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in EXPORT_FORMATS:
            raise ValidationError({"format": [f"Must be one of: {', '.join(EXPORT_FORMATS)}."]})
        since = _since(request)
        until = timezone.now()
        body = export_stream(project=project, fmt=fmt, since=since, until=until)
        response = StreamingHttpResponse(body, content_type=EXPORT_FORMATS[fmt])
        suffix = "json" if fmt == "labelstudio" else fmt
        response["Content-Disposition"] = f'attachment; filename="project-{project.pk}.{suffix}"'
        response[CURSOR_HEADER] = until.isoformat()
        return response


class PredictionsView(APIView):
    """The latest model's label and probabilities for each unlabeled item (`?all=1`:
    every item), streamed as JSON lines."""

    @extend_schema(
        parameters=[OpenApiParameter("all", bool, required=False)],
        responses={(200, "application/x-ndjson"): {"type": "string"}},
        examples=[
            OpenApiExample(
                "line",
                value={
                    "id": 7,
                    "external_id": "a-7",
                    "status": "unlabeled",
                    "label": "cat",
                    "probabilities": {"cat": 0.82, "dog": 0.18},
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        everything = request.query_params.get("all", "") in ("1", "true", "yes")
        body = stream_jsonl(item_predictions(project=project, everything=everything))
        response = StreamingHttpResponse(body, content_type=EXPORT_FORMATS["jsonl"])
        response["Content-Disposition"] = (
            f'attachment; filename="project-{project.pk}-predictions.jsonl"'
        )
        return response


class ModelView(APIView):
    """Managers: the latest trained ensemble as a file for plain PyTorch (README, "The
    trained model"): `torch.load(f, weights_only=True)`. Class i is the project's
    labels[i]; `X-Featurizer` names what turned items into its inputs, `X-Model-Round`
    the round that trained it."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        latest = round_latest_model(project=project)
        if latest is None:
            raise NotFound("No model yet: the first trained round has not finished.")
        number, data = latest
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = (
            f'attachment; filename="project-{project.pk}-round-{number}.pt"'
        )
        response["X-Model-Round"] = str(number)
        response["X-Featurizer"] = project_featurizer_name(project)
        return response


# --- webhooks -----------------------------------------------------------------------------

DELIVERY_LOG_SIZE = 100


class WebhooksView(APIView):
    """Managers: the project's webhooks (signed POSTs of its events, see
    annotation.services.webhooks for the signature)."""

    @extend_schema(responses=WebhookOutSerializer(many=True))
    def get(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        return Response(WebhookOutSerializer(project.webhooks.all(), many=True).data)

    @extend_schema(
        request=WebhookInSerializer,
        responses={201: WebhookOutSerializer},
        examples=[
            OpenApiExample(
                "hook",
                value={"url": "https://example.org/hooks", "events": ["round.finished"]},
                request_only=True,
            )
        ],
    )
    def post(self, request, pk: int):
        project = project_for(request, pk, manager=True)
        data = WebhookInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hook = webhook_create(project=project, **data.validated_data)
        return Response(WebhookOutSerializer(hook).data, status=201)


class WebhookDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int, hook: int):
        project = project_for(request, pk, manager=True)
        deleted, _ = project.webhooks.filter(pk=hook).delete()
        if not deleted:
            raise Http404("No such webhook.")
        return Response(status=204)


class WebhookDeliveriesView(APIView):
    """Managers: the hook's latest deliveries, newest first."""

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def get(self, request, pk: int, hook: int):
        project = project_for(request, pk, manager=True)
        webhook = project.webhooks.filter(pk=hook).first()
        if webhook is None:
            raise Http404("No such webhook.")
        deliveries = webhook.deliveries.order_by("-id")[:DELIVERY_LOG_SIZE]
        return Response(WebhookDeliverySerializer(deliveries, many=True).data)
