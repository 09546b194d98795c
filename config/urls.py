from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotation.api.throttles import LoginView

# Of django.contrib.auth's views only sign-in (throttled) and sign-out are served: no
# password reset or change pages that nobody configured.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include("annotation.api.urls")),
    path("", include("annotation.urls")),
]
