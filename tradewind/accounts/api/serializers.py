from __future__ import annotations

from rest_framework import serializers

from tenants.api.serializers import RoleField
from tradewind.accounts.models import ApiToken


class TokenSerializer(serializers.ModelSerializer):
    """A token as lists show it: never the secret, only its recognisable prefix."""

    username = serializers.CharField(source="user.username", read_only=True)
    role_cap = RoleField(read_only=True)
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "kind",
            "username",
            "prefix",
            "role_cap",
            "rate",
            "expires_at",
            "last_used_at",
            "created_at",
            "revoked_at",
            "is_usable",
        ]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    role = RoleField(required=False)  # the cap; default: the creator's current role
    username = serializers.CharField(required=False)  # someone else (or a service account): token.manage
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    rate = serializers.CharField(required=False, allow_blank=True, max_length=32)


class ServiceAccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    role = RoleField()
    description = serializers.CharField(required=False, allow_blank=True)
