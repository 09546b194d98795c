from django.urls import path

from annotation import views

urlpatterns = [
    path("", views.project_list, name="home"),
    path("projects/new/", views.project_new, name="project-new"),
    path("projects/<int:pk>/", views.project_dashboard, name="dashboard"),
    path("projects/<int:pk>/settings/", views.project_settings, name="project-settings"),
    path("projects/<int:pk>/live/", views.project_dashboard_live, name="dashboard-live"),
    path("projects/<int:pk>/label/", views.label_page, name="label"),
]
