from django.urls import path

from . import views

app_name = "sharing"
urlpatterns = [
    path("runs/<int:run_id>/share/", views.share_run, name="share"),
    path("compare/share/", views.share_comparison, name="share_comparison"),
    path("account/shares/", views.my_links, name="links"),
    path("account/shares/<int:link_id>/revoke/", views.revoke, name="revoke"),
    path("s/<str:token>/", views.shared_run, name="run"),
    path("s/<str:token>/results/", views.shared_results, name="results"),
    path("s/<str:token>/live/", views.shared_live, name="live"),
]
