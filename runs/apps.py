from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .worker import scheduling  # noqa: F401  connects Run's slot_freed signal to the release of waiting runs
