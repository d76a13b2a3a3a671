from django.urls import path

from . import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("runs/launch/", views.launch, name="launch"),
    path("runs/rows/", views.list_rows, name="rows"),
    path("runs/<int:run_id>/", views.detail, name="detail"),
    path("runs/<int:run_id>/cancel/", views.cancel, name="cancel"),
    path("runs/<int:run_id>/logs/", views.logs, name="logs"),
    path("runs/<int:run_id>/live/", views.live, name="live"),
    path("runs/<int:run_id>/results/", views.results, name="results"),
    path("runs/<int:run_id>/model/", views.download_model, name="model"),
]
