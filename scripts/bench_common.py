"""Helpers shared by the benchmark scripts' Python runners (stdlib only): isolated
environments, starting and stopping processes, waiting for output lines, reading JSON
event files, percentiles."""

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time


def env_for(work, name):
    """An environment isolated in `work`: own HOME, XDG dirs and config file, and no
    RTC_CLI_* or RUST_LOG from the caller's."""
    home = os.path.join(work, "home-" + name)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RTC_CLI_") and k != "RUST_LOG"}
    env.update(HOME=home,
               XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_STATE_HOME=os.path.join(home, ".local/state"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               RTC_CLI_CONFIG=os.path.join(work, name + ".toml"))
    os.makedirs(home, exist_ok=True)
    return env


def spawn(work, name, argv, stdin=subprocess.DEVNULL):
    """Starts `argv` with stdout and stderr in `work`/NAME.out and .err and the
    environment of `env_for`."""
    out = open(os.path.join(work, name + ".out"), "w")
    err = open(os.path.join(work, name + ".err"), "w")
    return subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env_for(work, name))


def stop(p):
    """Terminates `p` (SIGTERM, then SIGKILL after 5 s) and reaps it."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def sample(proc):
    """(wall time, utime+stime clock ticks, VmHWM kB) of a live (or zombie) process from
    /proc/PID/stat and /proc/PID/status; None once it is gone."""
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        hwm = 0
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return (time.time(), ticks, hwm)
    except (OSError, IndexError, ValueError):
        return None


def reap(proc, timeout):
    """Waits (wait4) up to `timeout` s; returns ru_maxrss in kB, or None if still alive."""
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_maxrss
        if time.time() >= deadline:
            return None
        time.sleep(0.02)


def stop_measured(proc):
    """SIGTERM (rtc-cli hangs up or leaves, then exits), SIGKILL after 3 s; returns
    ru_maxrss in kB (None if it was reaped before)."""
    if proc.returncode is not None:
        return None
    proc.terminate()
    rss = reap(proc, 3)
    if rss is None:
        proc.kill()
        rss = reap(proc, 3)
    return rss


def wait_for(path, pattern, proc, seconds):
    """The first line of `path` matching `pattern`, polled every 20 ms; RuntimeError
    when `proc` exits or `seconds` pass first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with open(path) as f:
                for line in f:
                    if re.search(pattern, line):
                        return line.strip()
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError(f"no line matching {pattern!r} in {path}")


def parse_ts(ts):
    """Seconds since the epoch of an RFC 3339 UTC timestamp (`...Z`)."""
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def events(path):
    """The JSON events of a headless stdout file, each with `t` (epoch seconds of its
    `ts`); other lines and a missing file are skipped."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "ts" in ev:
                    ev["t"] = parse_ts(ev["ts"])
                out.append(ev)
    except FileNotFoundError:
        pass
    return out


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ranked = sorted(values)
    k = max(0, min(len(ranked) - 1, -(-p * len(ranked) // 100) - 1))
    return ranked[int(k)]


def terminate_on_sigterm(children):
    """On SIGTERM, terminate every child in `children` still running and exit 143."""

    def stop_all(*_):
        for p in children:
            if p.poll() is None:
                p.terminate()
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop_all)


def kill_all(children):
    """Kill every child in `children` still running (a run that failed)."""
    for p in children:
        if p.poll() is None:
            p.kill()
