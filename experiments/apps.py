from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from datasets import usage

        from .models import Experiment

        usage.register("experiments", Experiment)  # the dataset pages list the experiments on a dataset
