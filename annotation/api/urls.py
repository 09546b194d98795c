from django.conf import settings
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import BasePermission

from annotation.api import views
from annotation.api.auth import TokenView


class SchemaAccess(BasePermission):
    """The OpenAPI schema and docs: for anyone, or signed-in callers only when
    ANNOTATION_SCHEMA_AUTH is set."""

    def has_permission(self, request, view):
        return not settings.ANNOTATION_SCHEMA_AUTH or bool(
            request.user and request.user.is_authenticated
        )


urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("projects/", views.ProjectListView.as_view(), name="api-projects"),
    path("projects/<int:pk>/", views.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<int:pk>/items/", views.ItemsView.as_view(), name="api-items"),
    path("projects/<int:pk>/next/", views.NextView.as_view(), name="api-next"),
    path("projects/<int:pk>/annotations/", views.AnnotationsView.as_view(), name="api-annotations"),
    path("projects/<int:pk>/skip/", views.SkipView.as_view(), name="api-skip"),
    path("projects/<int:pk>/lease/", views.LeaseView.as_view(), name="api-lease"),
    path(
        "projects/<int:pk>/skipped/return/",
        views.SkippedReturnView.as_view(),
        name="api-skipped-return",
    ),
    path("projects/<int:pk>/members/", views.MembersView.as_view(), name="api-members"),
    path("projects/<int:pk>/groups/", views.GroupsView.as_view(), name="api-groups"),
    path("projects/<int:pk>/rounds/", views.RoundsView.as_view(), name="api-rounds"),
    path("projects/<int:pk>/export/", views.ExportView.as_view(), name="api-export"),
    path("projects/<int:pk>/predictions/", views.PredictionsView.as_view(), name="api-predictions"),
    path("projects/<int:pk>/model/", views.ModelView.as_view(), name="api-model"),
    path("projects/<int:pk>/webhooks/", views.WebhooksView.as_view(), name="api-webhooks"),
    path(
        "projects/<int:pk>/webhooks/<int:hook>/",
        views.WebhookDetailView.as_view(),
        name="api-webhook",
    ),
    path(
        "projects/<int:pk>/webhooks/<int:hook>/deliveries/",
        views.WebhookDeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "schema/", SpectacularAPIView.as_view(permission_classes=[SchemaAccess]), name="api-schema"
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[SchemaAccess]),
        name="api-docs",
    ),
]
