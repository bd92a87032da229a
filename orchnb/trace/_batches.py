"""Provider batches in the store (table ``provider_batches``, migration 011): which batch holds
which requests, so batch mode resumes a batch instead of paying for it twice.

Writes are rare (one per submission and one per end) and go straight to SQLite under the
store's lock, so a batch is recorded before its first poll: a kernel that dies right after
submitting still leaves the id behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ._store import SpanStore

LIVE = ("running",)
"""Statuses of batches a re-run may attach to: submitted and never read back (a batch read back
has its answers in the response cache; a cancelled one is never resumed)."""


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """One provider batch as the store keeps it."""

    batch_id: str
    provider: str
    model: str
    url: str | None
    run_id: str | None
    keys: list[str]
    """Each request's content address; request ``i`` has custom id ``r{i}``."""
    status: str
    """``running``, ``ended``, ``cancelled`` or ``failed``."""
    failed: list[str]
    """Custom ids that ended without an answer."""


def record_batch(store: SpanStore, batch_id: str, provider: str, model: str, url: str | None,
                 run_id: str | None, keys: list[str]) -> None:
    """Remember a batch just submitted (status ``running``)."""
    now = time.time()
    with store._lock:
        store._conn.execute(
            "INSERT OR REPLACE INTO provider_batches VALUES (?, ?, ?, ?, ?, ?, 'running', "
            "'[]', ?, ?)", (batch_id, provider, model, url, run_id, json.dumps(keys), now, now))


def mark_batch(store: SpanStore, batch_id: str, status: str,
               failed: list[str] | None = None) -> None:
    """Record how a batch ended (``ended``, ``cancelled``, ``failed``) and its failed ids."""
    with store._lock:
        store._conn.execute(
            "UPDATE provider_batches SET status = ?, failed = coalesce(?, failed), updated = ? "
            "WHERE batch_id = ?",
            (status, None if failed is None else json.dumps(failed), time.time(), batch_id))


def live_batches(store: SpanStore, provider: str, model: str, url: str | None
                 ) -> list[StoredBatch]:
    """Batches of ``provider:model`` at ``url`` that a re-run may attach to (see
    :data:`LIVE`), oldest first."""
    with store._lock:
        rows = store._conn.execute(
            "SELECT batch_id, provider, model, url, run_id, keys, status, failed "
            "FROM provider_batches WHERE provider = ? AND model = ? AND status IN (?) "
            "AND (url IS ? OR url = ?) ORDER BY created",
            (provider, model, *LIVE, url, url)).fetchall()
    out = []
    for bid, prov, mod, u, run, keys, status, failed in rows:
        try:
            k, f = json.loads(keys), json.loads(failed or "[]")
        except ValueError:
            continue  # a damaged row is skipped: at worst the batch is paid again
        out.append(StoredBatch(bid, prov, mod, u, run, list(map(str, k)), status,
                               list(map(str, f))))
    return out


def stored_batches(store: SpanStore, run_id: str | None = None) -> list[StoredBatch]:
    """Every recorded batch (of one run), oldest first."""
    with store._lock:
        rows = store._conn.execute(
            "SELECT batch_id, provider, model, url, run_id, keys, status, failed "
            "FROM provider_batches WHERE (? IS NULL OR run_id = ?) ORDER BY created",
            (run_id, run_id)).fetchall()
    return [StoredBatch(b, p, m, u, r, json.loads(k), s, json.loads(f or "[]"))
            for b, p, m, u, r, k, s, f in rows]
