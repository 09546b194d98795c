from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Register the Celery tasks in every process (web included), so that
        # annotation.services.dispatch, which sends them by name, finds them in the app's
        # registry (and runs them in place in eager mode).
        from annotation import tasks  # noqa: F401
