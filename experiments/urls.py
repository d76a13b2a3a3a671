from django.urls import path

from . import accounts, views

app_name = "experiments"
urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/", views.new, name="new"),
    path("new/target-check/", views.target_check, name="target_check"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/edit/", views.edit, name="edit"),
    path("<int:experiment_id>/clone/", views.clone, name="clone"),
    path("<int:experiment_id>/launch/", views.experiment_launch, name="launch"),
    path("<int:experiment_id>/delete/", views.experiment_delete, name="delete"),
]

# Sign-up (when settings.RUNWATCH["SIGNUP_ENABLED"]) and password change, at the site root.
account_urlpatterns = [
    path("signup/", accounts.signup, name="signup"),
    path("password/", accounts.PasswordChange.as_view(), name="password_change"),
    path("password/done/", accounts.PasswordChangeDone.as_view(), name="password_change_done"),
]
