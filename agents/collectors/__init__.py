"""Collectors: Prometheus remote-write and Alertmanager webhooks mapped into NovaCron events."""

from __future__ import annotations

from agents.collectors.alerts import AlertReceiver, AlertResult, decision_id_for
from agents.collectors.config import (
    DEFAULT_RULES,
    AlertRoute,
    AlertsConfig,
    CollectorConfig,
    LabelVariable,
    RemoteWriteConfig,
)
from agents.collectors.mapper import MappedRequest, RemoteWriteMapper
from agents.collectors.remote_write import (
    Series,
    decode_write_request,
    encode_write_request,
    http_status,
)
from agents.collectors.rules import GaugeRule, QuantileRule, RateRule, RatioRule, Selector
from agents.collectors.validate import REJECT_REASONS

__all__ = [
    "DEFAULT_RULES",
    "REJECT_REASONS",
    "AlertReceiver",
    "AlertResult",
    "AlertRoute",
    "AlertsConfig",
    "CollectorConfig",
    "GaugeRule",
    "LabelVariable",
    "MappedRequest",
    "QuantileRule",
    "RateRule",
    "RatioRule",
    "RemoteWriteConfig",
    "RemoteWriteMapper",
    "Selector",
    "Series",
    "decode_write_request",
    "decision_id_for",
    "encode_write_request",
    "http_status",
]
