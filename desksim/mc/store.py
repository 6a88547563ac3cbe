"""The experiment's folder, a store that cannot lie: the manifest, the part files, resume, compaction.

``mc.json`` is the manifest: the plan (scenario sha256, seed, runs, batching, distributions)
and, for every finished part, its sha256 and run indices. A part also carries its identity
(scenario sha256, seed, batch, runs) in its Parquet metadata. On resume a part is trusted only
if its bytes match the manifest's checksum and it holds exactly its batch's runs of this seed
and scenario; compaction checks every part's checksum again. Every file is written atomically
(:mod:`desksim.output`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from desksim.mc.plan import Plan
from desksim.output import atomic_path, write_json

MANIFEST = "mc.json"
PARTS = "parts"


def part_path(out: Path, batch: int) -> Path:
    return out / PARTS / f"batch-{batch:05d}.parquet"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def part_identity(manifest: dict[str, Any], plan: Plan, batch: int) -> dict[str, Any]:
    """What a part of ``batch`` records about itself (in its Parquet metadata)."""
    rng = plan.batch_indices(batch)
    return {
        "scenario_sha256": manifest.get("scenario_sha256"),
        "seed": plan.seed,
        "batch": batch,
        "runs": [rng.start, rng.stop],
    }


def check_part(out: Path, plan: Plan, manifest: dict[str, Any], batch: int) -> tuple[pa.Table | None, str]:
    """The part's table if it is the one the manifest recorded for ``batch``, else (None, why)."""
    path = part_path(out, batch)
    entry = (manifest.get("parts") or {}).get(str(batch))
    if not path.exists():
        return None, "missing"
    if not isinstance(entry, dict):
        return None, "not recorded in the manifest"
    data = path.read_bytes()
    if sha256(data) != entry.get("sha256"):
        return None, "checksum differs from the manifest"
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # a damaged file, whatever pyarrow says about it
        return None, f"unreadable ({type(exc).__name__})"
    want = part_identity(manifest, plan, batch)
    meta = (table.schema.metadata or {}).get(b"desksim.mc")
    if meta is None or json.loads(meta) != want or entry.get("runs") != want["runs"]:
        return None, "belongs to another batch, seed or scenario"
    runs = table.column("run").to_pylist() if "run" in table.column_names else None
    if runs is None or sorted(runs) != list(plan.batch_indices(batch)):
        return None, "holds other runs than its batch"
    return table, ""


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest in ``out``, or None when there is none."""
    path = out / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    write_json(out / MANIFEST, manifest)


def prepare_out(out: Path, manifest: dict[str, Any], resume: bool) -> dict[str, Any]:
    """Create ``out`` or check it matches the manifest of the run being resumed."""
    path = out / MANIFEST
    if path.exists():
        if not resume:
            raise ValueError(
                f"{out}: already holds a Monte Carlo run; pass --resume to complete it or choose another --out"
            )
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None
        for key in ("scenario_sha256", "seed", "runs", "distributions", "duration_s", "batch_size"):
            if old.get(key) != manifest.get(key):
                raise ValueError(
                    f"{out}: cannot resume: {key} differs (folder has {old.get(key)!r}, asked {manifest.get(key)!r})"
                )
        for stale in (out / PARTS).glob(".*.tmp-*"):
            stale.unlink(missing_ok=True)
        return old
    if out.exists() and any(out.iterdir()):
        if resume:
            raise ValueError(
                f"{out}: no {MANIFEST} (not a Monte Carlo folder, or its manifest was lost): refusing to adopt its "
                "files; choose another --out"
            )
        raise ValueError(f"{out}: exists and is not empty; choose another --out")
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)
    return manifest


def open_store(
    out: Path, plan: Plan, manifest: dict[str, Any], resume: bool
) -> tuple[dict[str, Any], list[int], list[int]]:
    """Prepare ``out`` for ``plan``: the manifest to keep, the batches still to run and the
    batches recomputed because their part could not be trusted (said so on stderr)."""
    manifest = prepare_out(out, manifest, resume)
    parts: dict[str, Any] = manifest.setdefault("parts", {})
    trusted: list[int] = []
    recomputed: list[int] = []
    for b in range(plan.batches):
        table, why = check_part(out, plan, manifest, b)
        if table is not None:
            trusted.append(b)
            continue
        parts.pop(str(b), None)
        if why != "missing":
            r = plan.batch_indices(b)
            print(
                f"desksim mc: {part_path(out, b)}: {why}; recomputing batch {b} (runs {r.start}-{r.stop - 1})",
                file=sys.stderr,
            )
            recomputed.append(b)
            part_path(out, b).unlink(missing_ok=True)
    for stale in set(parts) - {str(b) for b in trusted}:
        parts.pop(stale, None)
    write_manifest(out, manifest)
    keep = set(trusted)
    return manifest, [b for b in range(plan.batches) if b not in keep], recomputed


def write_part(out: Path, plan: Plan, manifest: dict[str, Any], batch: int, table: pa.Table) -> None:
    """Write ``batch``'s part (its identity in the metadata) and record its checksum in ``manifest``
    (in memory: the caller writes the manifest)."""
    ident = part_identity(manifest, plan, batch)
    table = table.replace_schema_metadata({"desksim.mc": json.dumps(ident)})
    path = part_path(out, batch)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    manifest["parts"][str(batch)] = {"sha256": sha256(path.read_bytes()), "runs": ident["runs"]}


def compact(out: Path, plan: Plan, manifest: dict[str, Any]) -> Path:
    """Concatenate the part files in batch (= run index) order into runs.parquet, streaming; each
    part is checked against the manifest again (a part changed meanwhile stops the run)."""
    target = out / "runs.parquet"
    schema = plan.schema()
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in range(plan.batches):
            table, why = check_part(out, plan, manifest, batch)
            if table is None:
                raise ValueError(f"{part_path(out, batch)}: {why}; rerun with --resume to recompute it")
            writer.write_table(table.replace_schema_metadata(None).cast(schema).sort_by("run"))
    return target
