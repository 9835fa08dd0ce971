from django.contrib.auth import views as auth_views
from django.urls import path

from tradewind.accounts.views import LockoutAuthenticationForm, landing

urlpatterns = [
    path("", landing, name="landing"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            redirect_authenticated_user=True,
            authentication_form=LockoutAuthenticationForm,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
