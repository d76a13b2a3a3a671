from django.urls import path

from . import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("runs/<int:run_id>/", views.detail, name="detail"),
]
