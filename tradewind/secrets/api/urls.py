from rest_framework.routers import SimpleRouter

from tradewind.secrets.api.views import ConnectionViewSet, VariableViewSet

router = SimpleRouter()
router.register("connections", ConnectionViewSet, basename="connection")
router.register("variables", VariableViewSet, basename="variable")
urlpatterns = router.urls
