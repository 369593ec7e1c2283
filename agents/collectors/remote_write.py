"""Decoding of Prometheus remote-write 1.0 requests: headers, snappy, protobuf `WriteRequest`.

Everything here fails with a `DeadLetterError` whose `status` is the HTTP answer: the request can
never succeed, so Prometheus must not retry it (it retries 5xx and drops 4xx).
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
from google.protobuf.message import DecodeError as ProtobufDecodeError

from agents.collectors import remote_pb2
from schemas.errors import DeadLetterError, DecodeError, OversizedMessage

__all__ = [
    "STALE_NAN_BITS",
    "RemoteWriteError",
    "Series",
    "UnsupportedMediaType",
    "decode_write_request",
    "encode_write_request",
    "http_status",
    "snappy_length",
]

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker: a NaN with this exact bit pattern (value.StaleNaN)."""

_PROTOBUF = "application/x-protobuf"


class RemoteWriteError(DecodeError):
    """The body is not a decodable remote-write request (bad snappy or protobuf): 400."""


class UnsupportedMediaType(DecodeError):
    """Wrong Content-Type, Content-Encoding or protocol version: 415."""


@dataclass(frozen=True, slots=True)
class Series:
    """One time series of a request, as plain data (no protobuf types leak out)."""

    labels: tuple[tuple[str, str], ...]
    """Label pairs in request order (duplicates kept: validation reports them)."""
    samples: tuple[tuple[int, float], ...]
    """(timestamp ms, value) in request order."""
    histograms: tuple[int, ...] = ()
    """Timestamps of native-histogram samples (not mapped; reported)."""


def http_status(exc: DeadLetterError) -> int:
    """The HTTP status for a rejected request."""
    if isinstance(exc, OversizedMessage):
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    return 400


def check_headers(content_type: str | None, content_encoding: str | None) -> None:
    """Remote-write 1.0 is `application/x-protobuf` (no `proto=` other than prometheus.WriteRequest)
    with `Content-Encoding: snappy`."""
    media, _, params = (content_type or "").partition(";")
    if media.strip().lower() != _PROTOBUF:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not {_PROTOBUF} (remote-write 1.0)"
        )
    proto = _param(params, "proto")
    if proto not in (None, "prometheus.WriteRequest"):
        raise UnsupportedMediaType(
            f"remote-write message {proto!r} is not supported; send remote-write 1.0 "
            "(prometheus.WriteRequest)"
        )
    if (content_encoding or "").strip().lower() != "snappy":
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not snappy (remote-write 1.0 requires it)"
        )


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def snappy_length(body: bytes) -> int:
    """The uncompressed length a snappy block declares (its leading varint), read without
    decompressing, so a small body cannot make us allocate gigabytes."""
    length = shift = 0
    for i, byte in enumerate(body[:10]):
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            if i >= 5 or length >= 1 << 32:
                break
            return length
        shift += 7
    raise RemoteWriteError("not snappy: the block does not start with a valid length")


def decode_write_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    max_body_bytes: int,
    max_decoded_bytes: int,
    max_samples: int | None = None,
) -> list[Series]:
    """Check headers and sizes, decompress, parse; the request's series as plain data.

    `max_samples` bounds the work one request may cause (samples + histograms + series)."""
    check_headers(content_type, content_encoding)
    if len(body) > max_body_bytes:
        raise OversizedMessage(f"body of {len(body)} bytes exceeds {max_body_bytes}")
    declared = snappy_length(body)
    if declared > max_decoded_bytes:
        raise OversizedMessage(
            f"uncompressed request of {declared} bytes exceeds {max_decoded_bytes}"
        )
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError (and ValueError)
        raise RemoteWriteError(f"not snappy (block format): {exc}") from None
    request = remote_pb2.WriteRequest()  # type: ignore[attr-defined]
    try:
        request.ParseFromString(raw)
    except ProtobufDecodeError as exc:
        raise RemoteWriteError(f"not a protobuf WriteRequest: {exc}") from None
    if max_samples is not None:
        _check_count(request, max_samples)
    return [_series(ts) for ts in request.timeseries]


def _check_count(request: remote_pb2.WriteRequest, limit: int) -> None:  # type: ignore[name-defined]
    count = len(request.timeseries)
    for ts in request.timeseries:
        if count > limit:
            break
        count += len(ts.samples) + len(ts.histograms)
    if count > limit:
        raise OversizedMessage(
            f"request holds more than {limit} samples and series; lower max_samples_per_send"
        )


def _series(ts: remote_pb2.TimeSeries) -> Series:  # type: ignore[name-defined]
    return Series(
        labels=tuple((label.name, label.value) for label in ts.labels),
        samples=tuple((s.timestamp, s.value) for s in ts.samples),
        histograms=tuple(h.timestamp for h in ts.histograms),
    )


def encode_write_request(series: list[Series]) -> bytes:
    """A snappy-compressed WriteRequest (for tests, benchmarks and replaying dead letters)."""
    request = remote_pb2.WriteRequest()  # type: ignore[attr-defined]
    for s in series:
        ts = request.timeseries.add()
        for name, value in s.labels:
            ts.labels.add(name=name, value=value)
        for timestamp, number in s.samples:
            ts.samples.add(timestamp=timestamp, value=number)
        for timestamp in s.histograms:
            ts.histograms.add(timestamp=timestamp)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
