from __future__ import annotations

from rest_framework import serializers

from tenants.models import Membership
from tenants.roles import Role


class RoleField(serializers.ChoiceField):
    """A role as its lower-case name ("viewer" ... "admin"), the way users and Airflow spell it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=[role.name.lower() for role in Role], **kwargs)

    def to_representation(self, value: int) -> str:
        return Role(value).name.lower()

    def to_internal_value(self, data: object) -> Role:
        return Role.from_name(super().to_internal_value(data))


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)
    role = RoleField()

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "role", "created_at"]
        read_only_fields = ["id", "username", "email", "created_at"]


class RoleChangeSerializer(serializers.Serializer):
    role = RoleField()
