from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api.views import GrantViewSet, GroupViewSet, MembershipViewSet, TenantSettingsView

router = SimpleRouter()
router.register("members", MembershipViewSet, basename="member")
router.register("grants", GrantViewSet, basename="grant")
router.register("groups", GroupViewSet, basename="group")
urlpatterns = [path("tenant/", TenantSettingsView.as_view(), name="tenant-settings"), *router.urls]
