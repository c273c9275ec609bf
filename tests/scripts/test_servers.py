"""How the scripts start Label Studio: its settings on SQLite and on PostgreSQL."""
from __future__ import annotations

from pathlib import Path

from scripts.servers import LABEL_STUDIO_SQLITE_TUNING, LABEL_STUDIO_TUNING, label_studio_env


def test_label_studio_gets_the_import_flag_and_wal_only_on_sqlite():
    sqlite = label_studio_env(document_root=Path("/d"), base={"PATH": "/bin"})
    assert sqlite["LOCAL_FILES_DOCUMENT_ROOT"] == "/d"
    assert all(sqlite[k] == v for k, v in {**LABEL_STUDIO_TUNING, **LABEL_STUDIO_SQLITE_TUNING}.items())
    pg = label_studio_env(document_root=Path("/d"), base={"DJANGO_DB": "default"})
    assert all(pg[k] == v for k, v in LABEL_STUDIO_TUNING.items())
    assert not set(LABEL_STUDIO_SQLITE_TUNING) & set(pg)
    stock = label_studio_env(document_root=Path("/d"), base={}, tuned=False)
    assert not (set(LABEL_STUDIO_TUNING) | set(LABEL_STUDIO_SQLITE_TUNING)) & set(stock)
