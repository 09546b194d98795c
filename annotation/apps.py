from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Register the Celery tasks in every process (web included), so that
        # annotation.services.dispatch, which sends them by name, finds them in the app's
        # registry (and runs them in place in eager mode).
        from annotation import tasks  # noqa: F401
        from annotation.api.auth import token_rotate_on_password_change

        post_save.connect(token_rotate_on_password_change, sender=settings.AUTH_USER_MODEL)
