"""The actions on a run's results (re-run, resume, promote) and the compare page."""

from django.urls import path

from . import compare_views, result_views

app_name = "results"
urlpatterns = [
    path("runs/<int:run_id>/rerun/", result_views.rerun, name="rerun"),
    path("runs/<int:run_id>/resume/", result_views.resume, name="resume"),
    path("runs/<int:run_id>/promote/", result_views.promote, name="promote"),
    path("compare/", compare_views.compare, name="compare"),
]
