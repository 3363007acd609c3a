"""A throwaway PostgreSQL server (PLATFORM.md's recipe) that a test can also stop and start,
to take the store away from a worker."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def server_binaries() -> Path | None:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda p: [int(x) for x in p.split("/")[-2].split(".")])
    return Path(bins[-1]) if bins else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PostgresServer:
    def __init__(self, binaries: Path):
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="pgtest-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"  # without a database name
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.root / "data"),
                                     "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"),
                                     "-l", str(self.root / "log"), "-w", "-o",
                                     f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                                     "-c fsync=off -c max_connections=200", "start"]),
                       check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.root / "data"),
                                     "-m", mode, "-w", "stop"]), capture_output=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
