"""Edge rules (issue 11, findings 3 and 5): shape limits of free-form JSON, strict numbers and
booleans, identifiers without control characters, the event-time window, one verdict everywhere."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, get_args, get_origin

import orjson
import pytest
from pydantic import AfterValidator, StringConstraints

from schemas import EVENT_TYPES, ConfigChange, Decision, MetricSample
from schemas.codec import Codec
from schemas.edge import IDENTIFIER_PATTERN, EdgeRules, JsonBound, strip_annotated
from schemas.envelope import Event
from schemas.errors import SchemaViolation
from tests.unit.test_sinks_examples import EXAMPLES, T0

NOW = T0 + timedelta(days=1)
"""The pinned clock every codec here judges event times against (the examples are at T0)."""
CODEC = Codec(clock=lambda: NOW)
SMALL = EdgeRules(max_depth=5, max_object_keys=6, max_list_items=7, max_total_items=30,
                  max_string_chars=50)
SMALL_CODEC = Codec(rules=SMALL, clock=lambda: NOW)


def wire(event_type: str, **changes: Any) -> dict[str, Any]:
    """The JSON wire form of the example of `event_type`, with fields replaced."""
    data = orjson.loads(CODEC.encode(EXAMPLES[event_type]))
    data.update(changes)
    return data


def refused(codec: Codec, event_type: str, data: dict[str, Any]) -> str:
    with pytest.raises(SchemaViolation) as info:
        codec.decode(orjson.dumps(data) if _shallow(data) else json.dumps(data).encode(),
                     EVENT_TYPES[event_type])
    return info.value.reason


def accepted(codec: Codec, event_type: str, data: dict[str, Any]) -> Event:
    return codec.decode(orjson.dumps(data), EVENT_TYPES[event_type])


def _shallow(data: Any, depth: int = 0) -> bool:
    # orjson writes at most 254 levels; deeper test inputs go through the stdlib encoder
    if depth > 200:
        return False
    if isinstance(data, dict):
        return all(_shallow(v, depth + 1) for v in data.values())
    if isinstance(data, list):
        return all(_shallow(v, depth + 1) for v in data)
    return True


def nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep: nested(1) == {"k": 0}."""
    value: Any = 0
    for _ in range(depth):
        value = {"k": value}
    return value


def _bound(info: Any) -> JsonBound | None:
    found = [m.func for m in info.metadata
             if isinstance(m, AfterValidator) and isinstance(m.func, JsonBound)]
    return found[0] if found else None


BOUNDED = [(t, name, _bound(info)) for t, m in sorted(EVENT_TYPES.items())
           for name, info in m.model_fields.items() if _bound(info) is not None]
"""Every bounded free-form field: (event type, field, its validator)."""
JSON_FIELDS = [(t, n, b) for t, n, b in BOUNDED
               if "Any" in str(strip_annotated(EVENT_TYPES[t].model_fields[n].annotation))]
"""The fields that hold arbitrary JSON (config, params, details, output, changes)."""


def test_every_free_form_field_is_bounded() -> None:
    unbounded = [f"{t}.{n}" for t, m in EVENT_TYPES.items() for n, info in m.model_fields.items()
                 if get_origin(strip_annotated(info.annotation)) in (dict, list)
                 and _bound(info) is None]
    assert unbounded == []
    assert {n for _t, n, _b in JSON_FIELDS} == {"config", "params", "details", "output", "changes"}


# --- finding 3 as written: 300 levels of nesting -------------------------------------------


def test_config_change_nested_300_levels_is_a_schema_violation_in_json_and_avro() -> None:
    data = wire("ConfigChange", config=nested(300))
    assert "config: nested deeper than 64 levels" in refused(CODEC, "ConfigChange", data)
    registry = CODEC.registry
    record = EXAMPLES["ConfigChange"].model_dump(mode="python")
    record["config"] = json.dumps(nested(300))  # Avro carries it as a JSON string
    raw = registry.encode(record, registry.current("ConfigChange"))
    with pytest.raises(SchemaViolation, match="config: nested deeper than 64 levels"):
        CODEC.decode(raw, ConfigChange)


def test_decision_params_nested_300_levels_is_a_schema_violation() -> None:
    data = wire("Decision", params=nested(300))
    assert "params: nested deeper than 64 levels" in refused(CODEC, "Decision", data)


def test_nesting_beyond_the_json_parser_is_a_decode_error_not_a_crash() -> None:
    from schemas.errors import DecodeError

    raw = b'{"resource_id": "r", "resource_type": "t", "config": ' + b"[" * 5000 + b"]" * 5000
    with pytest.raises(DecodeError, match="not valid JSON"):
        CODEC.decode(raw + b"}", ConfigChange)


@pytest.mark.parametrize(("event_type", "field", "bound"), JSON_FIELDS,
                         ids=[f"{t}.{n}" for t, n, _ in JSON_FIELDS])
def test_what_the_edge_accepts_at_the_highest_depth_setting_is_storable(
        event_type: str, field: str, bound: JsonBound) -> None:
    from sinks.audit import AuditChain, audit_entry_for
    from sinks.rows import to_row

    deepest = Codec(rules=EdgeRules(max_depth=200), clock=lambda: NOW)
    value = _at_depth(event_type, field, 200 + bound.extra_depth)
    event = accepted(deepest, event_type, wire(event_type, **{field: value}))
    to_row(event)  # orjson, the history row and the payload: must not raise
    entry = audit_entry_for(event)
    if entry is not None:
        AuditChain().append(**entry)
    for fmt in ("json", "avro"):
        assert deepest.decode(deepest.encode(event, fmt), type(event)) == event  # type: ignore[arg-type]


def _at_depth(event_type: str, field: str, depth: int) -> Any:
    """A value of `field` whose nesting (the field's own container counted) is `depth`."""
    if get_origin(strip_annotated(EVENT_TYPES[event_type].model_fields[field].annotation)) is list:
        return [nested(depth - 1)]
    return nested(depth)


# --- shape limits, per bounded field -------------------------------------------------------


@pytest.mark.parametrize(("event_type", "field", "bound"), JSON_FIELDS,
                         ids=[f"{t}.{n}" for t, n, _ in JSON_FIELDS])
def test_depth_at_the_limit_passes_one_more_level_is_refused(
        event_type: str, field: str, bound: JsonBound) -> None:
    limit = SMALL.max_depth + bound.extra_depth
    accepted(SMALL_CODEC, event_type, wire(event_type, **{field: _at_depth(event_type, field,
                                                                          limit)}))
    data = wire(event_type, **{field: _at_depth(event_type, field, limit + 1)})
    assert f"{field}: nested deeper than {limit} levels" in refused(SMALL_CODEC, event_type, data)


def _leaf(event_type: str, field: str) -> Any:
    annotation = strip_annotated(EVENT_TYPES[event_type].model_fields[field].annotation)
    args = get_args(annotation)
    if get_origin(annotation) is dict:
        return {str: "v", float: 1.5, int: 1}.get(args[1], "v")
    return "v" if args[0] is str else {"k": "v"}


def _many(event_type: str, field: str, n: int, key: Any = "k{}", leaf: Any = None) -> Any:
    """A value of `field` with n entries in one container (keys made from `key`)."""
    default = _leaf(event_type, field)
    if isinstance(default, dict):  # a list of objects: the n entries go in one object
        return [{key.format(i): leaf or "v" for i in range(n)}]
    if _is_list(event_type, field):
        return [leaf or default] * n
    return {key.format(i): leaf or default for i in range(n)}


def _is_list(event_type: str, field: str) -> bool:
    annotation = strip_annotated(EVENT_TYPES[event_type].model_fields[field].annotation)
    return get_origin(annotation) is list


@pytest.mark.parametrize(("event_type", "field", "bound"), BOUNDED,
                         ids=[f"{t}.{n}" for t, n, _ in BOUNDED])
def test_keys_items_and_string_lengths_are_limited(
        event_type: str, field: str, bound: JsonBound) -> None:
    flat_list = _is_list(event_type, field) and not isinstance(_leaf(event_type, field), dict)
    most, word = (SMALL.max_list_items, "items") if flat_list else (SMALL.max_object_keys, "keys")
    accepted(SMALL_CODEC, event_type, wire(event_type, **{field: _many(event_type, field, most)}))
    reason = refused(SMALL_CODEC, event_type,
                     wire(event_type, **{field: _many(event_type, field, most + 1)}))
    assert f"has {most + 1} {word}, above the {most} limit" in reason
    if _leaf(event_type, field) in ("v", {"k": "v"}):  # string values: their length
        text = "x" * (SMALL.max_string_chars + 1)
        long = _many(event_type, field, 1, leaf=text)
        reason = refused(SMALL_CODEC, event_type, wire(event_type, **{field: long}))
        assert f"string of {len(text)} characters" in reason
    if not flat_list:  # objects: the length of their keys
        long_key = _many(event_type, field, 1, key="k" * (SMALL.max_string_chars + 1))
        reason = refused(SMALL_CODEC, event_type, wire(event_type, **{field: long_key}))
        assert f"a key of {SMALL.max_string_chars + 1} characters" in reason


@pytest.mark.parametrize(("event_type", "field", "bound"), JSON_FIELDS,
                         ids=[f"{t}.{n}" for t, n, _ in JSON_FIELDS])
def test_items_in_total_are_limited(event_type: str, field: str, bound: JsonBound) -> None:
    # every container within its own limit; 30 keys and items in all is the limit, 35 is over
    listed = _is_list(event_type, field)  # the outer list of a list field holds one item
    within = {f"k{i}": [1] * (4 if listed and i == 0 else 5) for i in range(5)}
    over = {f"k{i}": [1] * 6 for i in range(5)}
    wrap = (lambda v: [v]) if listed else (lambda v: v)
    accepted(SMALL_CODEC, event_type, wire(event_type, **{field: wrap(within)}))
    reason = refused(SMALL_CODEC, event_type, wire(event_type, **{field: wrap(over)}))
    assert "more than 30 keys and list items in total" in reason


def test_huge_inputs_give_short_reasons() -> None:
    data = wire("ConfigChange", config={"k": "x" * 300_000})
    reason = refused(CODEC, "ConfigChange", data)
    assert "string of 300000 characters at /k, above the 262144 limit" in reason
    assert len(reason) < 300


# --- finding 5: booleans are not numbers ---------------------------------------------------


def _numeric_fields() -> list[tuple[str, str, str]]:
    out = []
    for t, model in sorted(EVENT_TYPES.items()):
        for name, info in model.model_fields.items():
            annotation = strip_annotated(info.annotation)
            inner = [a for a in get_args(annotation) if a is not type(None)]
            if annotation in (float, int) or (inner and inner[0] in (float, int)
                                              and get_origin(annotation) is not dict):
                out.append((t, name, "scalar"))
            elif get_origin(annotation) is dict and get_args(annotation)[1] in (float, int):
                out.append((t, name, "map"))
    return out


NUMERIC = _numeric_fields()


def test_the_finding_as_written_cpu_usage_true_is_refused() -> None:
    reason = refused(CODEC, "MetricSample", {"resource_id": "vm-1", "cpu_usage": True})
    assert "cpu_usage: a boolean is not a number" in reason


@pytest.mark.parametrize(("event_type", "field", "kind"), NUMERIC,
                         ids=[f"{t}.{n}" for t, n, _ in NUMERIC])
@pytest.mark.parametrize("bad", [True, False, "1", "1.5"])
def test_every_numeric_field_refuses_booleans_and_strings(
        event_type: str, field: str, kind: str, bad: Any) -> None:
    value = {"m": bad} if kind == "map" else bad
    reason = refused(CODEC, event_type, wire(event_type, **{field: value}))
    assert reason.startswith(f"{field}") and ("boolean" in reason) == isinstance(bad, bool)


def test_json_integers_are_fine_for_float_fields() -> None:
    sample = accepted(CODEC, "MetricSample", {"resource_id": "vm-1", "cpu_usage": 50})
    assert isinstance(sample, MetricSample) and sample.cpu_usage == 50.0


def test_integers_must_fit_int64() -> None:
    reason = refused(CODEC, "MetricSample", {"resource_id": "vm-1", "active_vms": 2**64 - 1})
    assert "active_vms: Input should be less than or equal to 9223372036854775807" in reason


BOOLS = [(t, n) for t, m in sorted(EVENT_TYPES.items()) for n, i in m.model_fields.items()
         if i.annotation is bool]


@pytest.mark.parametrize(("event_type", "field"), BOOLS, ids=[f"{t}.{n}" for t, n in BOOLS])
@pytest.mark.parametrize("bad", [1, 0, "true", "yes", "off"])
def test_booleans_are_only_true_or_false(event_type: str, field: str, bad: Any) -> None:
    assert refused(CODEC, event_type, wire(event_type, **{field: bad})).startswith(field)


# --- finding 5: identifiers refuse control characters --------------------------------------

CONTROL = {"NUL": "\x00", "newline": "\n", "carriage return": "\r", "tab": "\t",
           "escape": "\x1b", "DEL": "\x7f", "C1 NEL": "\x85", "C1 CSI": "\x9b",
           "RLO bidi override": "\u202e", "RLI bidi isolate": "\u2067", "RLM": "\u200f",
           "zero-width space": "\u200b", "BOM": "\ufeff", "line separator": "\u2028"}


def _identifier_fields() -> list[tuple[str, str, str]]:
    out = []
    for t, model in sorted(EVENT_TYPES.items()):
        for name, info in model.model_fields.items():
            if not (_is_identifier(info.metadata) or _mentions_identifier(info.annotation)):
                continue
            annotation = strip_annotated(info.annotation)
            kind = ("map key" if get_origin(annotation) is dict
                    else "list item" if get_origin(annotation) is list else "value")
            out.append((t, name, kind))
    return out


def _is_identifier(metadata: Any) -> bool:
    return any(isinstance(m, StringConstraints) and m.pattern == IDENTIFIER_PATTERN
               for m in metadata)


def _mentions_identifier(annotation: Any) -> bool:
    metadata = getattr(annotation, "__metadata__", ())
    return _is_identifier(metadata) or any(_mentions_identifier(a) for a in get_args(annotation))


IDS = _identifier_fields()


def test_the_finding_as_written_nul_and_newline_in_resource_id_are_refused() -> None:
    for char in ("\x00", "\n"):
        reason = refused(CODEC, "MetricSample", {"resource_id": f"vm{char}1"})
        assert f"resource_id: contains a control, bidi, zero-width or line-break character " \
               f"(U+{ord(char):04X} at position 2)" in reason


def test_the_identifier_class_covers_the_ids_of_the_finding() -> None:
    names = {n for _t, n, _k in IDS}
    assert {"resource_id", "event_id", "correlation_id", "causation_id", "action_id",
            "request_id", "policy_id", "source", "cluster", "decision_id", "step_id",
            "control_id", "labels", "standards"} <= names


@pytest.mark.parametrize("char_class", sorted(CONTROL))
def test_every_identifier_field_refuses_each_control_character_class(char_class: str) -> None:
    char = CONTROL[char_class]
    bad = f"id{char}x"
    missed = []
    for event_type, field, kind in IDS:
        value: Any = bad
        if kind == "map key":
            value = {bad: _map_value(event_type, field)}
        elif kind == "list item":
            value = [bad]
        try:
            CODEC.decode(orjson.dumps(wire(event_type, **{field: value})),
                         EVENT_TYPES[event_type])
            missed.append(f"{event_type}.{field}")
        except SchemaViolation as exc:
            assert f"U+{ord(char):04X}" in exc.reason, exc.reason
    assert missed == []


def _map_value(event_type: str, field: str) -> Any:
    value_type = get_args(strip_annotated(EVENT_TYPES[event_type].model_fields[field].annotation))
    return {str: "v", float: 1.0, int: 1}[value_type[1]]


@pytest.mark.parametrize("text", ["vm-é", "サーバー-1", "aws_s3_bucket.logs[\"a b\"]", "ok 🚀"])
def test_printable_unicode_identifiers_are_fine(text: str) -> None:
    assert accepted(CODEC, "MetricSample", {"resource_id": text}).resource_id == text  # type: ignore[attr-defined]


def test_free_text_fields_keep_their_newlines() -> None:
    decision = accepted(CODEC, "Decision", wire("Decision", reasoning="line one\nline two"))
    assert isinstance(decision, Decision) and decision.reasoning == "line one\nline two"


def test_identifier_pattern_is_a_string_constraint() -> None:
    # the check runs in pydantic-core (Rust regex), not in a Python validator per field
    metadata = MetricSample.model_fields["resource_id"].metadata
    assert any(isinstance(m, StringConstraints) and m.pattern == IDENTIFIER_PATTERN
               for m in metadata)
