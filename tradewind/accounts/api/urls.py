from rest_framework.routers import SimpleRouter

from tradewind.accounts.api.views import ServiceAccountViewSet, TokenViewSet

router = SimpleRouter()
router.register("tokens", TokenViewSet, basename="token")
router.register("service-accounts", ServiceAccountViewSet, basename="service-account")
urlpatterns = router.urls
