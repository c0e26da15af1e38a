"""AuditLog listeners: called with each record once it is in the file; their failures never
reach the writer."""

from __future__ import annotations

from pathlib import Path

from guardd.audit import AuditLog, AuditRecord


def test_listeners_get_each_record_after_it_is_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    seen: list[tuple[int, bool]] = []

    def listener(record: AuditRecord) -> None:
        on_disk = record.to_json() in path.read_text().splitlines()
        seen.append((record.seq, on_disk))

    with AuditLog.open(path) as log:
        log.add_listener(listener)
        log.append("device.decision", {"device": "2-1"})
        log.append("device.removed", {"device": "2-1"})
    assert seen == [(1, True), (2, True)]


def test_a_failing_listener_neither_stops_the_others_nor_the_writer(tmp_path: Path) -> None:
    got: list[str] = []

    def broken(record: AuditRecord) -> None:
        raise RuntimeError("listener bug")

    with AuditLog.open(tmp_path / "audit.jsonl") as log:
        log.add_listener(broken)
        log.add_listener(lambda r: got.append(r.event))
        written = log.append("device.decision", {"device": "2-1"})
        assert written.seq == 1
        assert log.head[0] == 1
    assert got == ["device.decision"]
