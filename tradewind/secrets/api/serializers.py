from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers


class ExtraField(serializers.Field):
    """A connection's extra: accepted as a JSON object or a JSON string, stored as the string."""

    def to_internal_value(self, data: Any) -> str | None:
        if data in (None, ""):
            return None
        if isinstance(data, dict):
            return json.dumps(data)
        if isinstance(data, str):
            try:
                json.loads(data)
            except ValueError:
                raise serializers.ValidationError("extra must be JSON") from None
            return data
        raise serializers.ValidationError("extra must be a JSON object or string")

    def to_representation(self, value: Any) -> Any:
        return value


class ConnectionWriteSerializer(serializers.Serializer):
    """Airflow's connection fields (or a `uri`); omitted fields keep their stored value on update."""

    conn_id = serializers.CharField(max_length=250, required=False)
    uri = serializers.CharField(required=False)
    conn_type = serializers.CharField(max_length=500, required=False)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    host = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    schema = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    login = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    password = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    port = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=65535)
    extra = ExtraField(required=False, allow_null=True)


class VariableWriteSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=250, required=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
