"""Every JSON model the front-ends return, by name: the CLI's ``--json`` and the HTTP API's bodies.

``python -m archiver.models DIR`` writes their JSON Schemas (docs/schemas/ in the repository); a test
checks the committed files are current and that real CLI output validates against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from archiver.access import NewToken, TokenInfo
from archiver.alerts.delivery import Delivery, DeliveryRound
from archiver.alerts.digest import Digest
from archiver.alerts.events import AlertEvent
from archiver.alerts.webhooks import Webhook, WebhookCreated
from archiver.derive import DeriveResult
from archiver.evidence import ProvenanceReport
from archiver.exhibits import ExhibitSet
from archiver.exhibits.produce import ProductionReport
from archiver.fulltext import SearchReport, SyncResult
from archiver.gc import GcReport
from archiver.jobs import CaptureJob
from archiver.matters import Matter
from archiver.matters.holds import HoldChange
from archiver.matters.notes import MatterView, Note, TagChange
from archiver.migrate import MigrationReport, SchemaReport
from archiver.monitor import (
    ClauseHistory,
    DeclarationVersion,
    DiffReport,
    HistoryReport,
    RunSummary,
    Watch,
    WatchUpdate,
)
from archiver.provisions import Provision, ProvisionCheck, ProvisionReport
from archiver.publication import PublicationReport
from archiver.queue import QueueStatus
from archiver.records import (
    Addendum,
    ArtifactMatch,
    BatchItem,
    Manifest,
    RecordSummary,
    StampResult,
    Verification,
)
from archiver.reports import (
    BatchStampLine,
    BatchWaybackLine,
    BundleReport,
    CaptureReport,
    CitationReport,
    ExportReport,
    FileCheck,
    FileVerification,
    ImportReport,
    InitReport,
    JobAccepted,
    KeyReport,
    RebuildReport,
    RecordPage,
    RecordReport,
    RequeueReport,
    Settings,
    StoreInfo,
    SubmitReport,
    WaybackReport,
    WrittenFile,
)
from archiver.schema import json_schema
from archiver.tlog.reports import (
    LogAuditReport,
    LogCheckpointReport,
    LogConsistencyReport,
    LogKeyReport,
    LogProofCheckReport,
    LogProofReport,
    LogSyncReport,
    LogWitnessEntry,
)

#: schema name -> record type. Commands that print a list print an array of one of these.
MODELS: dict[str, type] = {
    "manifest": Manifest,
    "addendum": Addendum,
    "init": InitReport,
    "capture": CaptureReport,
    "batch-item": BatchItem,
    "batch-stamp": BatchStampLine,
    "batch-wayback": BatchWaybackLine,
    "record-summary": RecordSummary,
    "record": RecordReport,
    "verification": Verification,
    "bundle-verification": BundleReport,
    "stamp-result": StampResult,
    "wayback": WaybackReport,
    "citation": CitationReport,
    "export": ExportReport,
    "import": ImportReport,
    "artifact-match": ArtifactMatch,
    "file-check": FileCheck,
    "written-file": WrittenFile,
    "key": KeyReport,
    "settings": Settings,
    "submit": SubmitReport,
    "requeue": RequeueReport,
    "queue-status": QueueStatus,
    "store-info": StoreInfo,
    "rebuild-index": RebuildReport,
    "migration": MigrationReport,
    "schema-migrations": SchemaReport,
    "watch": Watch,
    "search": SearchReport,
    "search-sync": SyncResult,
    "watch-run": RunSummary,
    "watch-update": WatchUpdate,
    "declaration": DeclarationVersion,
    "history": HistoryReport,
    "clause-history": ClauseHistory,
    "diff": DiffReport,
    "derive": DeriveResult,
    "provenance": ProvenanceReport,
    "record-page": RecordPage,
    "capture-job": CaptureJob,
    "job-accepted": JobAccepted,
    "file-verification": FileVerification,
    "token": TokenInfo,
    "new-token": NewToken,
    "publication": PublicationReport,
    "log-checkpoint": LogCheckpointReport,
    "log-key": LogKeyReport,
    "log-proof": LogProofReport,
    "log-consistency": LogConsistencyReport,
    "log-audit": LogAuditReport,
    "log-sync": LogSyncReport,
    "log-proof-check": LogProofCheckReport,
    "log-witness": LogWitnessEntry,
    "provision": Provision,
    "provision-report": ProvisionReport,
    "provision-check": ProvisionCheck,
    "exhibit-set": ExhibitSet,
    "production": ProductionReport,
    "matter": Matter,
    "matter-view": MatterView,
    "note": Note,
    "tag-change": TagChange,
    "hold-change": HoldChange,
    "gc": GcReport,
    "alert-event": AlertEvent,
    "webhook": Webhook,
    "new-webhook": WebhookCreated,
    "alert-delivery": Delivery,
    "alert-delivery-round": DeliveryRound,
    "alert-digest": Digest,
}


def schemas() -> dict[str, dict[str, Any]]:
    return {name: json_schema(cls, title=name) for name, cls in MODELS.items()}


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        sys.stdout.write(f"{p}\n")
