"""Extraction on a Dask distributed cluster: a real LocalCluster with worker processes, reached
through its scheduler's address as a user reaches theirs (--scheduler, IMGINDEX_SCHEDULER).

The index a cluster scan writes equals a local scan's, table by table (imgindex.consistency); a
worker killed mid-scan costs its chunks a retry and the index no row; a worker that does not see
the files at the same path stops the scan with a message saying so."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, ROOT, free_port, invoke, run_imgindex, sql_rows
from test_kill import FILES, indexed_count, kill_after, slow_folder

from imgindex import Index, consistency
from imgindex.executors import cluster as engine

distributed = pytest.importorskip("distributed")

TRAIN = DATA / "coco128_sample" / "images" / "train2017"
VAL = DATA / "coco8" / "images" / "val"


def cluster(workers: int) -> Any:
    return distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with cluster(2) as running:
        yield running.scheduler_address


def differences(a: Path, b: Path) -> int:
    return consistency.count(consistency.compare_files(a, b))


def test_a_scan_on_the_cluster_writes_the_rows_of_a_local_scan(tmp_path: Path, scheduler: str) -> None:
    env = {"IMGINDEX_SCHEDULER": scheduler}
    on_cluster = run_imgindex("scan", "--db", str(tmp_path / "c.db"), f"train={TRAIN}", f"val={VAL}", env=env)
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert on_cluster.stdout.startswith("20 new, 0 changed"), on_cluster.stdout
    invoke("scan", "--db", str(tmp_path / "l.db"), "--executor", "inline", f"train={TRAIN}", f"val={VAL}", "-q")
    assert differences(tmp_path / "c.db", tmp_path / "l.db") == 0
    [arguments] = sql_rows(tmp_path / "c.db", "select json_extract(arguments, '$.scheduler') s from scans")
    assert arguments["s"] == scheduler


def test_a_rescan_on_the_cluster_sends_only_what_changed(tmp_path: Path, scheduler: str) -> None:
    split = tmp_path / "train"
    shutil.copytree(TRAIN, split)
    db = tmp_path / "i.db"
    invoke("scan", "--db", str(db), "--scheduler", scheduler, f"train={split}", "-q")
    victim = sorted(split.glob("*.jpg"))[0]
    shutil.copy(VAL / sorted(os.listdir(VAL))[0], split / "added.jpg")
    victim.unlink()
    out = invoke("scan", "--db", str(db), "--scheduler", scheduler, f"train={split}", "-q").output
    assert out.startswith("1 new, 0 changed, 15 unchanged, 1 removed, 0 errors")
    invoke("scan", "--db", str(tmp_path / "clean.db"), "--executor", "inline", f"train={split}", "-q")
    assert differences(db, tmp_path / "clean.db") == 0


def many_files(root: Path, copies: int) -> Path:
    """``copies`` renamed copies of each vendored sample photo: work enough to be in flight on
    every worker when one is killed."""
    root.mkdir()
    sources = sorted(TRAIN.glob("*.jpg")) + sorted(VAL.glob("*.jpg"))
    for n in range(copies):
        for source in sources:
            shutil.copy(source, root / f"{n:03d}_{source.parent.name}_{source.name}")
    return root


def test_a_worker_killed_mid_scan_costs_a_retry_not_a_row(tmp_path: Path) -> None:
    split = many_files(tmp_path / "train", 12)  # 240 files, 8 a chunk
    killed: dict[str, Any] = {}
    with cluster(2) as running, distributed.Client(running) as client:
        pids = client.run(os.getpid)

        def kill_once(done: int, total: int) -> None:
            if not killed:
                worker, pid = sorted(pids.items())[0]
                os.kill(pid, signal.SIGKILL)
                killed.update(worker=worker, done=done, total=total)

        with Index(tmp_path / "c.db") as index:
            summary = index.scan({"train": split}, scheduler=running.scheduler_address, on_progress=kill_once)
        after = client.run(os.getpid)
    assert killed["done"] < killed["total"] == 240  # killed with the scan under way
    assert pids[killed["worker"]] not in after.values()  # that worker process is gone
    assert (summary.new, summary.errors) == (240, 0)
    invoke("scan", "--db", str(tmp_path / "l.db"), f"train={split}", "-q")
    assert differences(tmp_path / "c.db", tmp_path / "l.db") == 0


def test_the_watcher_applies_changes_through_the_cluster(tmp_path: Path, scheduler: str) -> None:
    split = tmp_path / "train"
    shutil.copytree(TRAIN, split)
    db = tmp_path / "w.db"
    with Index(db) as index:
        watcher = index.watcher({"train": split}, scheduler=scheduler, settle=0.1)
    finished: list[Any] = []
    thread = threading.Thread(target=lambda: finished.append(watcher.run()))
    thread.start()
    try:
        assert watcher.ready.wait(60)
        shutil.copy(sorted(VAL.glob("*.jpg"))[0], split / "added.jpg")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not sql_rows(db, "select 1 from images where rel_path = 'added.jpg'"):
            time.sleep(0.1)
    finally:
        watcher.stop.set()
        thread.join(60)
    assert sql_rows(db, "select error, dhash is not null h from images where rel_path = 'added.jpg'") == [
        {"error": None, "h": 1}
    ]
    assert finished[0].initial.new == 16
    assert finished[0].new == 1


def test_a_scheduler_and_another_executor_is_misuse(tmp_path: Path) -> None:
    result = invoke(
        "scan", "--db", str(tmp_path / "i.db"), "--executor", "inline", "--scheduler", "tcp://x:1", f"v={VAL}", ok=False
    )
    assert result.exit_code == 2
    assert "leave out --executor" in result.output
    assert not (tmp_path / "i.db").exists() or not sql_rows(tmp_path / "i.db", "select * from images")


def test_a_scheduler_nobody_runs_is_one_line(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    result = run_imgindex("scan", "--db", str(tmp_path / "i.db"), "--scheduler", address, f"val={VAL}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot reach the Dask scheduler at {address}" in result.stderr
    assert "dask worker" in result.stderr


def isolated_worker_possible() -> bool:
    """A worker in its own mount namespace (root, or unprivileged user namespaces) sees another tree."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(not isolated_worker_possible(), reason="needs unshare and a mount namespace")
def test_workers_that_do_not_see_the_files_stop_the_scan_with_a_message(tmp_path: Path) -> None:
    split = tmp_path / "train"
    shutil.copytree(TRAIN, split)
    with distributed.LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=40) as running:
        address = running.scheduler_address
        hidden = f"mount -t tmpfs none {split} && exec {sys.executable} -m distributed.cli.dask_worker {address}"
        worker = subprocess.Popen(
            ["unshare", "--mount", "--map-root-user", "sh", "-c", hidden],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            result = run_imgindex("scan", "--db", str(tmp_path / "i.db"), "--scheduler", address, f"train={split}")
        finally:
            worker.terminate()
            worker.wait(30)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert "cannot read" in result.stderr and "same path" in result.stderr
    assert sql_rows(tmp_path / "i.db", "select count(*) n from images") == [{"n": 0}]


def test_a_client_killed_mid_scan_leaves_an_index_the_next_scan_completes(tmp_path: Path, scheduler: str) -> None:
    folder, db = slow_folder(tmp_path), tmp_path / "index.db"
    command = [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "--batch-size", "5", "-q", f"noise={folder}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMGINDEX_SCHEDULER": scheduler}
    kill_after(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), db, 10)
    done = indexed_count(db)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        assert conn.execute("select count(*) = count(dhash) from images").fetchone() == (1,)  # whole rows only
    finally:
        conn.close()
    assert 10 <= done < FILES
    resumed = run_imgindex("scan", "--db", str(db), "--scheduler", scheduler, f"noise={folder}", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"{FILES - done} new, 0 changed, {done} unchanged, 0 removed, 0 errors")


def test_workers_running_another_extractor_are_refused_before_any_work(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "EXTRACTOR", engine.EXTRACTOR + 1)  # this machine: a newer imgindex
    result = invoke("scan", "--db", str(tmp_path / "i.db"), "--scheduler", scheduler, f"val={VAL}", ok=False)
    assert result.exit_code == 1
    assert f"(extractor {engine.EXTRACTOR - 1}), this machine extractor {engine.EXTRACTOR}" in result.output
    assert "install the same imgindex on every worker" in result.output
    assert sql_rows(tmp_path / "i.db", "select count(*) n from images") == [{"n": 0}]


def test_without_the_dask_extra_the_scheduler_option_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it fails
    result = invoke("scan", "--db", str(tmp_path / "i.db"), "--scheduler", "tcp://10.0.0.5:8786", f"v={VAL}", ok=False)
    assert result.exit_code == 1
    assert "pip install 'imgindex[dask]'" in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_stops_a_local_cluster_scan_with_one_line(tmp_path: Path) -> None:
    folder, db = slow_folder(tmp_path), tmp_path / "index.db"
    command = [sys.executable, "-m", "imgindex", "scan", "--db", str(db), "--executor", "dask", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scan = subprocess.Popen(
        [*command, "--batch-size", "5", f"noise={folder}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    deadline = time.monotonic() + 120
    while indexed_count(db) < 10 and scan.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scan.poll() is None, "the scan ended before it could be interrupted"
    os.killpg(scan.pid, signal.SIGINT)  # every process of the group: the scan and its cluster's workers
    _, err = scan.communicate(timeout=60)
    assert scan.returncode == 130
    assert err.strip() == "Interrupted: what was indexed is kept; run the same command again to finish."
    done = indexed_count(db)
    resumed = run_imgindex("scan", "--db", str(db), "--workers", "1", f"noise={folder}", "-q")
    assert resumed.stdout.startswith(f"{FILES - done} new, 0 changed, {done} unchanged, 0 removed, 0 errors")
