from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from datasets import usage

        from .models import Run
        from .worker import scheduling  # noqa: F401  connects Run's slot_freed signal to the release of waiting runs

        usage.register("runs", Run, active=Run.ACTIVE)  # the dataset pages count and list the runs on a dataset
