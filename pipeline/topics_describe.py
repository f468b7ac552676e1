"""`pipeline topics describe`: each pipeline topic's retention and, per partition, its offset
range and earliest timestamp, i.e. how far back a replay can reach right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.kafka import open_admin, pipeline_topic_specs, reader, topic_configs
from pipeline.settings import Settings
from pipeline.topics import TopicSpec


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """One partition: the first offset still kept, the next offset to be written, and the
    timestamp of the first kept message (None when the partition holds nothing)."""

    partition: int
    earliest: int
    latest: int
    earliest_ms: int | None


@dataclass(frozen=True, slots=True)
class TopicReport:
    spec: TopicSpec
    configs: dict[str, str] | None  # None: the topic does not exist
    partitions: list[PartitionRange]


def duration(ms: int) -> str:
    """retention.ms as a person reads it: `30 d`, `36 h`, `forever`."""
    if ms < 0:
        return "forever"
    hours = ms / 3_600_000
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} d"
    if hours >= 1:
        return f"{hours:g} h"
    return f"{ms / 1000:g} s"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _header(report: TopicReport) -> str:
    name = report.spec.name
    if report.configs is None:
        return f"{name}: missing (run `pipeline topics create`)"
    policy = report.configs.get("cleanup.policy", "delete")
    if "delete" not in policy:
        return f"{name}: cleanup.policy={policy} (kept by key, no time limit)"
    have = int(report.configs.get("retention.ms", "-1"))
    line = f"{name}: retention {duration(have)} (retention.ms={have}), cleanup.policy={policy}"
    want = report.spec.configs.get("retention.ms")
    if want is not None and int(want) != have:
        line += f"; configured {duration(int(want))}: MISMATCH (see `pipeline topics create`)"
    return line


def format_report(report: TopicReport) -> list[str]:
    """The lines `topics describe` prints for one topic."""
    lines = [_header(report)]
    if report.configs is None:
        return lines
    lines.append(f"  {'partition':>9}  {'earliest':>10}  {'latest':>10}  {'kept':>10}  earliest at")
    for p in report.partitions:
        kept = p.latest - p.earliest
        at = _when(p.earliest_ms)
        lines.append(f"  {p.partition:>9}  {p.earliest:>10}  {p.latest:>10}  {kept:>10}  {at}")
    return lines


async def partition_ranges(
    consumer: AIOKafkaConsumer, topic: str, partitions: int
) -> list[PartitionRange]:
    """Earliest and latest offsets and the first kept message's timestamp, per partition."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    firsts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    stamps = await consumer.offsets_for_times(dict.fromkeys(tps, 0))
    return [
        PartitionRange(
            tp.partition,
            firsts[tp],
            ends[tp],
            None if stamps.get(tp) is None else int(stamps[tp].timestamp),
        )
        for tp in tps
    ]


async def describe(settings: Settings) -> list[TopicReport]:
    """A report for every topic the pipeline owns, in `topics create` order."""
    specs = pipeline_topic_specs(settings)
    async with open_admin(settings) as admin:
        present = set(await admin.list_topics())
        configs = await topic_configs(admin, [s.name for s in specs if s.name in present])
        counts = {
            t["topic"]: len(t["partitions"])
            for t in (await admin.describe_topics(list(configs)) if configs else [])
        }
    async with reader(settings) as consumer:
        return [
            TopicReport(
                spec,
                configs.get(spec.name),
                await partition_ranges(consumer, spec.name, counts[spec.name])
                if spec.name in configs
                else [],
            )
            for spec in specs
        ]
