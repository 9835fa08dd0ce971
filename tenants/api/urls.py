from rest_framework.routers import SimpleRouter

from tenants.api.views import GrantViewSet, GroupViewSet, MembershipViewSet

router = SimpleRouter()
router.register("members", MembershipViewSet, basename="member")
router.register("grants", GrantViewSet, basename="grant")
router.register("groups", GroupViewSet, basename="group")
urlpatterns = router.urls
