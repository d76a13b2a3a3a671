from django.urls import path

from . import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("runs/launch/", views.launch, name="launch"),
    path("runs/rows/", views.list_rows, name="rows"),
]
