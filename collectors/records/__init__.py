"""Call-record collector: CSV files with a column mapping, replayed as live or imported."""

from __future__ import annotations

from collectors.records.mapping import ANONYMOUS_BANK, PRESETS, RecordMapping, parse_mapping
from collectors.records.reader import ReadState, read_records
from collectors.records.source import RecordsOptions, RecordsSource, load_mapping_file

__all__ = [
    "ANONYMOUS_BANK",
    "PRESETS",
    "ReadState",
    "RecordMapping",
    "RecordsOptions",
    "RecordsSource",
    "load_mapping_file",
    "parse_mapping",
    "read_records",
]
