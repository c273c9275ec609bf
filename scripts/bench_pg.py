"""A private PostgreSQL cluster for a benchmark run (Debian's ``postgresql`` package).

:func:`start_postgres` runs ``initdb`` in a folder and ``pg_ctl start`` on a free port of
127.0.0.1 (its socket in that folder, trust authentication: nothing listens beyond localhost);
:func:`label_studio_db_env` is the environment that points Label Studio at it (Label Studio's
``DJANGO_DB`` and ``POSTGRE_*`` settings, ``label_studio/core/settings/base.py``).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scripts import servers

USER = "labelstudio"
DATABASE = "labelstudio"


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    bin: Path
    data: Path
    port: int
    log: Path
    as_user: list[str] = field(default_factory=list)

    def stop(self) -> None:
        subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_postgres(folder: Path, *, port: int | None = None) -> Postgres:
    """initdb + start a cluster in ``folder`` (empty or absent) on 127.0.0.1; creates the
    Label Studio database. ``RuntimeError`` when PostgreSQL is not installed
    (``apt-get install -y postgresql``)."""
    binary = pg_bin()
    if binary is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    data = folder / "data"
    if data.exists():
        shutil.rmtree(data)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "postgres.log"
    as_user = _as_owner(folder)
    subprocess.run(as_user + [str(binary / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                              "--encoding=UTF8", "--no-sync"], check=True, stdout=subprocess.DEVNULL)
    pg = Postgres(binary, data, port or servers.free_port(), log, as_user)
    opts = f"-c listen_addresses=127.0.0.1 -p {pg.port} -k {folder} -c fsync=off"
    subprocess.run(as_user + [str(binary / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                              "-w", "start"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(binary / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", USER,
                    DATABASE], check=True)
    return pg


def _as_owner(folder: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the cluster runs as the package's ``postgres``
    user (``runuser``), which gets ``folder``."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no postgres user to run PostgreSQL as") from None
    shutil.chown(folder, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


def label_studio_db_env(pg: Postgres) -> dict[str, str]:
    """Label Studio's settings for ``pg`` (``DJANGO_DB=default`` is PostgreSQL)."""
    return {"DJANGO_DB": "default", "POSTGRE_NAME": DATABASE, "POSTGRE_USER": USER,
            "POSTGRE_PASSWORD": "", "POSTGRE_HOST": "127.0.0.1", "POSTGRE_PORT": str(pg.port)}
