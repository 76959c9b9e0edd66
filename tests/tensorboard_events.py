"""A tiny reader of TensorBoard event files (TFRecord), for the tests of the loggers."""

import struct
from pathlib import Path

from tensorboardX.proto.event_pb2 import Event
from tensorboardX.record_writer import masked_crc32c


def read_file(path: Path) -> list[Event]:
    """Every event of one file: records of uint64 length, its masked crc, data, the data's crc."""
    data, events, i = path.read_bytes(), [], 0
    while i < len(data):
        header = data[i : i + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[i + 8 : i + 12])
        body = data[i + 12 : i + 12 + length]
        (body_crc,) = struct.unpack("<I", data[i + 12 + length : i + 16 + length])
        assert header_crc == masked_crc32c(header) and body_crc == masked_crc32c(body)
        events.append(Event.FromString(body))
        i += 16 + length
    return events


def read_dir(logdir: Path) -> list[list[Event]]:
    """The events of every file in ``logdir``, files in the order they were opened."""
    files = [read_file(p) for p in logdir.iterdir() if "tfevents" in p.name]
    return sorted(files, key=lambda events: events[0].wall_time)


def scalars(events: list[Event]) -> dict[str, dict[int, float]]:
    """``tag -> {step: value}`` of the scalar summaries."""
    out: dict[str, dict[int, float]] = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def texts(events: list[Event]) -> dict[str, dict[int, str]]:
    """``tag -> {step: text}`` of the text summaries."""
    out: dict[str, dict[int, str]] = {}
    for event in events:
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "text":
                text = value.tensor.string_val[0].decode()
                out.setdefault(value.tag, {})[event.step] = text
    return out
