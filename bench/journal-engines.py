#!/usr/bin/env python3
"""Storage engines for the broker's journal, side by side: an append-only log file against SQLite in WAL mode.

usage: bench/journal-engines.py [--records N] [--max-commits N] [--groups 1,16,128,1024] [--dir PARENT]

What it measures. Each case stores N task records durably in group commits of G records (G = 1,
16, 128, 1024), in two passes, as a durable broker would: pass 1 writes every task as it is
enqueued, pass 2 records one state transition per task (as when it completes). A group commit
returns only once its records are on disk (fdatasync / fsync). For every case it reports
records/s, the bytes per record on disk, and the latency of one group commit (p50 / p99 in ms,
nearest rank), for each pass, and the CPU time of this process per record (both passes).

The engines:
  log             an append-only file. A record is a 4-byte little-endian length, a 4-byte
                  checksum, then the body: a kind byte, the 15-byte task id, the task (126 bytes):
                  150 bytes in all. The checksum is zlib.crc32, a stand-in for CRC32C (which the
                  standard library lacks; same size and the same work per byte, near enough). A
                  group is encoded, written with one os.write and made durable with one
                  os.fdatasync. Pass 2 appends one 25-byte transition record per task (length,
                  checksum, kind, id, new state byte).
  log-fallocate   the same, into a file preallocated with os.posix_fallocate (so that a commit
                  does not have to grow the file: fdatasync then has less metadata to flush).
  log-zerofill    (an extra case) the same, into a file preallocated by writing zeros and fsync,
                  as a journal that recycles or zero-fills its segments would (fallocate leaves
                  unwritten extents, which ext4 converts on first write).
  sqlite-wal      the sqlite3 module: PRAGMA journal_mode=WAL, synchronous=FULL, the default
                  page size and automatic checkpoint (1,000 pages); a table (id TEXT PRIMARY
                  KEY, body BLOB) where the body is the record's kind byte and task (127 bytes);
                  one transaction per group (BEGIN, executemany INSERT, COMMIT). Pass 2 runs one
                  UPDATE per record (SET body = the body with its state byte changed WHERE id =),
                  one transaction per group.

Task ids look like Conveyor's (an 8-character producer prefix and a 7-character counter, so they
sort in submission order). The latency of a group commit runs from the group's records as Python
objects to the return of fdatasync / COMMIT (encoding, checksums and SQLite's statements
included). records/s is the pass's records over the pass's wall time. Bytes per record on disk:
the log's bytes written (not the preallocated size) over N; SQLite's database file plus its -wal
file (st_size) over N, after pass 1 and after pass 2 (the JSON line also gives the database alone
after a final wal_checkpoint(TRUNCATE), which the table gives too, and every file's allocated
blocks).

Each case runs min(N, max-commits × G) records, so that group size 1 (one fdatasync per record)
stays short: with the defaults, --records 65536 and --max-commits 1000, G = 1 runs 1,000 records,
G = 16 runs 16,000, G = 128 and 1024 run 65,536 (512 and 64 commits a pass: at 64, p99 is the
largest). The whole run takes about a minute where a sync takes 4 ms, seconds where it is faster.
SQLite's -wal file is recycled after each automatic checkpoint, so its share of the bytes per
record shrinks as N grows; the table also gives the database alone after a final checkpoint.

Where: a fresh temporary directory under --dir (default /tmp, which must be a real disk
filesystem: the filesystem type is printed and tmpfs is refused, since fdatasync is a no-op
there), removed at the end. The machine's other work shares the disk: compare engines within one
run, not figures across runs.

Output: one JSON line per case on stdout as it finishes, then a markdown table of every case;
progress on stderr.

  python3 bench/journal-engines.py                 # the full run, in /tmp
  python3 bench/journal-engines.py --records 4096  # a quick one
"""
import argparse
import json
import os
import platform
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
import zlib

HEADER = struct.Struct("<II")  # length of the body, checksum of the body
ID_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
RECORD_BYTES = 150
TASK_BYTES = RECORD_BYTES - HEADER.size - 1 - 15  # 126: after the header, the kind byte and the id
ENGINES = ("log", "log-fallocate", "log-zerofill", "sqlite-wal")


def checksum(data):
    """zlib.crc32 as a stand-in for CRC32C (same width; the standard library has no CRC32C)."""
    return zlib.crc32(data)


def task_ids(count):
    """Ids like Conveyor's: an 8-character prefix of the producer, then a 7-character counter."""
    prefix = "Qx7_kP2a"
    ids = []
    for number in range(count):
        ids.append(prefix + "".join(ID_ALPHABET[(number >> (6 * (6 - i))) & 63] for i in range(7)))
    return ids


def task_body(index):
    """A task as the broker might keep it: its name, headers and a 64-byte echo payload, padded."""
    text = ('{"n":"echo","a":1,"t":1733090000.%06d,"args":{"id":%d,"data":"%s"}}'
            % (index % 1_000_000, index, "abcdefgh" * 8)).encode()
    return text[:TASK_BYTES].ljust(TASK_BYTES, b" ")


def percentile(sorted_values, p):
    """Nearest rank, as bench/celery/run.py and bench/python-seed/producer.py."""
    if not sorted_values:
        return None
    index = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[index - 1]


def latency_summary(seconds):
    values = sorted(seconds)
    return {key: (round(percentile(values, p) * 1e3, 4) if values else None)
            for key, p in (("p50", 50), ("p99", 99), ("max", 100))}


def groups_of(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def allocated(path):
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


class Pass:
    """One pass: its wall time and every group commit's latency."""

    def __init__(self):
        self.records = 0
        self.seconds = 0.0
        self.commits = []

    def report(self):
        return {
            "records": self.records,
            "commits": len(self.commits),
            "seconds": round(self.seconds, 6),
            "recordsPerSecond": round(self.records / self.seconds, 1) if self.seconds > 0 else None,
            "commitLatencyMs": latency_summary(self.commits),
        }


def run_log(directory, ids, bodies, group, preallocate):
    """The append-only log: one os.write and one os.fdatasync per group."""
    path = os.path.join(directory, "journal.log")
    n = len(ids)
    needed = n * RECORD_BYTES + n * (HEADER.size + 1 + 15 + 1)
    reserved = -(-needed // (1 << 20)) * (1 << 20)  # whole MiB
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if preallocate == "fallocate":
            os.posix_fallocate(fd, 0, reserved)
        elif preallocate == "zerofill":
            zeros = bytes(1 << 20)
            for _ in range(reserved >> 20):
                os.write(fd, zeros)
            os.lseek(fd, 0, os.SEEK_SET)
        os.fsync(fd)
        fsync_directory(directory)

        enqueue = [(ids[i].encode(), bodies[i]) for i in range(n)]
        clock = time.perf_counter
        written = 0

        def one_pass(items, encode):
            nonlocal written
            result = Pass()
            start = clock()
            for chunk in groups_of(items, group):
                began = clock()
                parts = []
                for item in chunk:
                    body = encode(item)
                    parts.append(HEADER.pack(len(body), checksum(body)))
                    parts.append(body)
                data = b"".join(parts)
                view = memoryview(data)
                while view:  # os.write may write less than asked
                    view = view[os.write(fd, view):]
                os.fdatasync(fd)
                result.commits.append(clock() - began)
                written += len(data)
                result.records += len(chunk)
            result.seconds = clock() - start
            return result

        first = one_pass(enqueue, lambda item: b"E" + item[0] + item[1])
        after_first = written
        second = one_pass(enqueue, lambda item: b"S" + item[0] + b"D")
        return first, second, {
            "bytesPerRecord": round(after_first / n, 2),
            "bytesPerRecordAfterTransitions": round(written / n, 2),
            "fileBytes": size(path),
            "allocatedBytes": allocated(path),
            "preallocatedBytes": reserved if preallocate else 0,
        }
    finally:
        os.close(fd)


def run_sqlite(directory, ids, bodies, group):
    """SQLite in WAL mode, synchronous=FULL: one transaction per group."""
    path = os.path.join(directory, "journal.sqlite")
    files = (path, path + "-wal")
    connection = sqlite3.connect(path, isolation_level=None)  # transactions by hand
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"SQLite refused WAL mode (journal_mode is {mode})")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, body BLOB)")
        fsync_directory(directory)
        n = len(ids)
        rows = [(ids[i], b"E" + bodies[i]) for i in range(n)]
        clock = time.perf_counter

        def one_pass(sql, items):
            result = Pass()
            start = clock()
            for chunk in groups_of(items, group):
                began = clock()
                connection.execute("BEGIN")
                connection.executemany(sql, chunk)
                connection.execute("COMMIT")
                result.commits.append(clock() - began)
                result.records += len(chunk)
            result.seconds = clock() - start
            return result

        first = one_pass("INSERT INTO tasks (id, body) VALUES (?, ?)", rows)
        after_first = sum(size(f) for f in files)
        second = one_pass("UPDATE tasks SET body = ? WHERE id = ?", [(b"D" + body[1:], key) for key, body in rows])
        after_second = sum(size(f) for f in files)
        allocated_bytes = sum(allocated(f) for f in files)
        wal_peak = size(path + "-wal")
        stored = connection.execute("SELECT count(*), sum(length(body)) FROM tasks WHERE substr(body, 1, 1) = x'44'")
        count, body_bytes = stored.fetchone()
        if count != n or body_bytes != n * (1 + TASK_BYTES):
            raise RuntimeError(f"SQLite holds {count} updated rows, expected {n}")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        return first, second, {
            "bytesPerRecord": round(after_first / n, 2),
            "bytesPerRecordAfterTransitions": round(after_second / n, 2),
            "bytesPerRecordAfterCheckpoint": round(size(path) / n, 2),
            "walBytes": wal_peak,
            "allocatedBytes": allocated_bytes,
            "pageSize": page_size,
        }
    finally:
        connection.close()


def verify_log(directory, n):
    """Reads the log back: every record's length and checksum, N enqueues then N transitions."""
    with open(os.path.join(directory, "journal.log"), "rb") as log:
        data = log.read()
    offset, kinds = 0, {b"E": 0, b"S": 0}
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        if length == 0:  # the preallocated tail
            break
        body = data[offset + HEADER.size:offset + HEADER.size + length]
        if len(body) != length or checksum(body) != crc:
            return False
        kinds[body[:1]] = kinds.get(body[:1], 0) + 1
        offset += HEADER.size + length
    return kinds.get(b"E") == n and kinds.get(b"S") == n


def filesystem_of(path):
    """The type of the filesystem that holds `path` (the longest mount point that contains it)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=65536, help="records per case (default 65536)")
    parser.add_argument("--max-commits", type=int, default=1000,
                        help="at most this many group commits per pass (default 1000): a case runs "
                             "min(records, max-commits × group) records")
    parser.add_argument("--groups", default="1,16,128,1024", help="group sizes (default 1,16,128,1024)")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"engines (default {','.join(ENGINES)})")
    parser.add_argument("--dir", default="/tmp", help="parent of the temporary directory (default /tmp)")
    options = parser.parse_args()
    try:
        group_sizes = [int(g) for g in options.groups.split(",") if g.strip()]
    except ValueError:
        parser.error("--groups must be a comma-separated list of positive integers")
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    if options.records < 1 or options.max_commits < 1 or not group_sizes or min(group_sizes) < 1:
        parser.error("--records, --max-commits and every group size must be positive")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        parser.error(f"unknown engine(s) {', '.join(unknown)} (choose from {', '.join(ENGINES)})")
    if not os.path.isdir(options.dir):
        parser.error(f"--dir {options.dir} is not a directory")
    fs = filesystem_of(options.dir)
    if fs in ("tmpfs", "ramfs"):
        print(f"journal-engines.py: {options.dir} is on {fs}, where fdatasync does nothing; "
              "give --dir on a disk filesystem", file=sys.stderr)
        return 2

    environment = {"filesystem": fs, "kernel": platform.release(), "python": platform.python_version(),
                   "sqlite": sqlite3.sqlite_version, "checksum": "zlib.crc32 (stand-in for CRC32C)"}
    print(f"journal-engines: {fs} under {options.dir}, SQLite {sqlite3.sqlite_version}, "
          f"kernel {platform.release()}", file=sys.stderr)

    lines = []
    failed = False
    started = time.monotonic()
    for group in group_sizes:
        n = min(options.records, options.max_commits * group)
        ids = task_ids(n)
        bodies = [task_body(i) for i in range(n)]
        for engine in engines:
            directory = tempfile.mkdtemp(prefix="journal-engines-", dir=options.dir)
            line = {"bench": "journal-engines", "engine": engine, "group": group, "records": n}
            try:
                cpu = time.process_time()
                if engine == "sqlite-wal":
                    first, second, disk = run_sqlite(directory, ids, bodies, group)
                    verified = True  # run_sqlite raises when the rows are not all there
                else:
                    preallocate = {"log": None, "log-fallocate": "fallocate", "log-zerofill": "zerofill"}[engine]
                    first, second, disk = run_log(directory, ids, bodies, group, preallocate)
                    verified = verify_log(directory, n)
                cpu = time.process_time() - cpu
                one, two = first.report(), second.report()
                line.update({
                    "commits": one["commits"], "recordsPerSecond": one["recordsPerSecond"],
                    "commitLatencyMs": one["commitLatencyMs"], "bytesPerRecord": disk["bytesPerRecord"],
                    "transitions": two, "bytesPerRecordAfterTransitions": disk["bytesPerRecordAfterTransitions"],
                    "cpuMicrosecondsPerRecord": round(cpu / (2 * n) * 1e6, 2), "disk": disk,
                    "verified": verified,
                })
            except Exception as error:
                line.update({"verified": False, "error": f"{type(error).__name__}: {error}"})
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            line.update(environment)
            failed = failed or not line["verified"]
            lines.append(line)
            print(json.dumps(line), flush=True)
            print(f"  {engine} group {group}: {line.get('recordsPerSecond')} records/s, "
                  f"{line.get('transitions', {}).get('recordsPerSecond')} transitions/s", file=sys.stderr)

    def fmt(value, digits=0):
        if value is None:
            return "—"
        return f"{value:,.{digits}f}"

    print()
    print(f"### Journal engines — {fs}, SQLite {sqlite3.sqlite_version}, {time.monotonic() - started:.0f} s")
    print()
    print("Pass 1 writes each record (log: 150 bytes framed; SQLite: INSERT); pass 2 one state transition "
          "per record (log: a 25-byte record; SQLite: UPDATE). Commit latency: one group, to the end of "
          "fdatasync / COMMIT. Bytes per record: log bytes written, SQLite database + -wal file, over the "
          "records; after checkpoint: SQLite's database alone after wal_checkpoint(TRUNCATE). "
          "Checksum: zlib.crc32 standing in for CRC32C.")
    print()
    print("| engine | group | records | pass 1 records/s | commit p50 ms | commit p99 ms | pass 2 records/s "
          "| commit p50 ms | commit p99 ms | bytes/record after pass 1 | after pass 2 | after checkpoint | CPU µs/record |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for line in lines:
        one = line.get("commitLatencyMs", {})
        two = line.get("transitions", {})
        name = line["engine"] + ("" if line["verified"] else " **FAILED**")
        print(f"| {name} | {line['group']:,} | {line['records']:,} | {fmt(line.get('recordsPerSecond'))} "
              f"| {fmt(one.get('p50'), 3)} | {fmt(one.get('p99'), 3)} | {fmt(two.get('recordsPerSecond'))} "
              f"| {fmt(two.get('commitLatencyMs', {}).get('p50'), 3)} "
              f"| {fmt(two.get('commitLatencyMs', {}).get('p99'), 3)} "
              f"| {fmt(line.get('bytesPerRecord'), 1)} | {fmt(line.get('bytesPerRecordAfterTransitions'), 1)} "
              f"| {fmt(line.get('disk', {}).get('bytesPerRecordAfterCheckpoint'), 1)} "
              f"| {fmt(line.get('cpuMicrosecondsPerRecord'), 1)} |")
    errors = [f"{line['engine']} group {line['group']}: {line.get('error', 'not verified')}"
              for line in lines if not line["verified"]]
    if errors:
        print()
        print("**Problems:** " + "; ".join(errors))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
