from rest_framework.routers import SimpleRouter

from tenants.api.views import MembershipViewSet

router = SimpleRouter()
router.register("members", MembershipViewSet, basename="member")
urlpatterns = router.urls
