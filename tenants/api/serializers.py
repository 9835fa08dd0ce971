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
        fields = ["id", "username", "email", "role", "grants_only", "created_at"]
        read_only_fields = ["id", "username", "email", "grants_only", "created_at"]


class RoleChangeSerializer(serializers.Serializer):
    role = RoleField()


class MembershipChangeSerializer(serializers.Serializer):
    """A member's role and/or whether their DAG rights are limited to granted DAGs."""

    role = RoleField(required=False)
    grants_only = serializers.BooleanField(required=False)


class GrantSerializer(serializers.Serializer):
    """The complete per-DAG grants of one member or tenant group (an empty list removes them)."""

    dag_id = serializers.CharField(max_length=250)
    username = serializers.CharField(required=False)
    group = serializers.CharField(required=False)
    perms = serializers.ListField(
        child=serializers.ChoiceField(choices=["view_dag", "trigger_dag", "change_dag"]), allow_empty=True
    )

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("username")) == bool(attrs.get("group")):
            raise serializers.ValidationError("give exactly one of username or group")
        return attrs


class GroupSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    members = serializers.ListField(child=serializers.CharField(), required=False)


class TenantSettingsSerializer(serializers.Serializer):
    """The tenant as its members see it; admins may change the name."""

    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(max_length=200)
    status = serializers.CharField(read_only=True)
    max_active_tasks = serializers.IntegerField(read_only=True)
    max_active_runs = serializers.IntegerField(read_only=True)
    max_dags = serializers.IntegerField(read_only=True)
    max_bundle_bytes = serializers.IntegerField(read_only=True)
