"""A run's results page, its model download and the actions on its results (re-run, resume, promote); compare."""

from django.urls import path

from . import compare_views, views

app_name = "results"
urlpatterns = [
    path("runs/<int:run_id>/results/", views.results, name="run"),
    path("runs/<int:run_id>/model/", views.download_model, name="model"),
    path("runs/<int:run_id>/rerun/", views.rerun, name="rerun"),
    path("runs/<int:run_id>/resume/", views.resume, name="resume"),
    path("runs/<int:run_id>/promote/", views.promote, name="promote"),
    path("compare/", compare_views.compare, name="compare"),
]
