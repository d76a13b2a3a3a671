from django.urls import path

from . import registry_views

app_name = "models"
urlpatterns = [
    path("", registry_views.model_list, name="list"),
    path("<int:model_id>/", registry_views.model_detail, name="detail"),
    path("<int:model_id>/download/", registry_views.download, name="download"),
]
