from django.urls import path

from . import views

app_name = "live"
urlpatterns = [
    path("runs/<int:run_id>/", views.detail, name="detail"),
    path("runs/<int:run_id>/cancel/", views.cancel, name="cancel"),
    path("runs/<int:run_id>/logs/", views.logs, name="logs"),
    path("runs/<int:run_id>/live/", views.live, name="live"),
]
