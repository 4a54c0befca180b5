# Sandstorm's sandbox init: the first process of a kept sandbox (see KeptSandbox.cs), running inside it, as its user,
# under its namespaces, seccomp filter and cgroup limits. It starts the commands the host asks for, relays their output,
# and does the sandbox's file operations, so everything runs on the inside: a path resolves in the sandbox's own view.
#
# Protocol: frames on stdin (from the host) and stdout (to the host): type (u8), id (u32 BE), length (u32 BE), payload.
# From the host: EXEC json{argv, cwd, env, stdin} · INPUT bytes · CLOSE_STDIN · SIGNAL json{signal} · KILL_ALL · PING ·
#   FS json{op, ...} (for op=write followed by FS_DATA frames and FS_END) — id names the process or request.
# To the host: READY json{pid} once · STARTED json{pid} · STDOUT/STDERR bytes · EXIT json{code, signal} · PONG json{processes} ·
#   ERROR json{code, message} · FS_OK json · FS_DATA bytes · FS_END json{bytes}.
# End of stdin (the host is gone) ends the init, and with it (pid 1) every process of the sandbox.
import errno, json, os, pwd, grp, selectors, shutil, signal, stat as st, struct, subprocess, sys, time

EXEC, INPUT, CLOSE_STDIN, SIGNAL, KILL_ALL, PING, FS, FS_DATA_IN, FS_END_IN = 1, 2, 3, 4, 5, 6, 10, 11, 12
READY, STARTED, PONG, STDOUT, STDERR, EXIT, ERROR, FS_OK, FS_DATA, FS_END = 64, 65, 66, 67, 68, 69, 70, 80, 81, 82
HEADER = struct.Struct(">BII")
CHUNK = 65536
HOME = os.environ.get("HOME", "/home/user")
ROOTS = (HOME, "/tmp")
MAX_LIST = 10000
PENDING_INPUT_LIMIT = 16 << 20
EXIT_GRACE = 0.1

out_fd = os.dup(1)
os.dup2(os.open("/dev/null", os.O_RDWR), 1)
os.umask(0o022)
selector = selectors.DefaultSelector()
wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def send(kind, ident, payload=b""):
    data = HEADER.pack(kind, ident, len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(out_fd, view):]


def send_json(kind, ident, value):
    send(kind, ident, json.dumps(value, separators=(",", ":")).encode())


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Proc:
    def __init__(self, ident, popen, stdout, stderr, stdin):
        self.ident = ident
        self.popen = popen
        self.kinds = {stdout: STDOUT, stderr: STDERR}
        self.open = {stdout, stderr}
        self.status = None
        self.reaped_at = None
        self.pending = bytearray()
        self.close_stdin = False
        self.stdin = stdin


procs = {}        # ident -> Proc
by_pid = {}       # pid -> Proc
uploads = {}      # ident -> [fd, temp path, final path, written, limit, error, path as asked]
devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)


def start(ident, request):
    argv = request.get("argv") or []
    if not argv or not all(isinstance(a, str) for a in argv):
        raise Failure("invalid", "argv must be a non-empty list of strings")
    cwd = resolve(request.get("cwd") or HOME, follow=True)
    if not os.path.isdir(cwd):
        raise Failure("invalid", f"working directory '{request.get('cwd')}' does not exist")
    env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
    # Plain descriptors, not Popen's file objects: this loop owns and closes them, nothing closes them twice.
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if request.get("stdin") else (devnull, None)
    try:
        popen = subprocess.Popen(argv, cwd=cwd, env=env, close_fds=True, start_new_session=True, stdin=in_r, stdout=out_w, stderr=err_w)
    except OSError as e:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise Failure("exec", f"{argv[0]}: {e.strerror}")
    finally:
        for fd in (out_w, err_w, in_r if in_w is not None else None):
            if fd is not None:
                os.close(fd)
    proc = Proc(ident, popen, out_r, err_r, in_w)
    procs[ident] = proc
    by_pid[popen.pid] = proc
    for fd in (out_r, err_r):
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ, ("out", proc, proc.kinds[fd]))
    if in_w is not None:
        os.set_blocking(in_w, False)
    send_json(STARTED, ident, {"pid": popen.pid})


def pump_output(fd, proc, kind):
    try:
        data = os.read(fd, CHUNK)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if data:
        send(kind, proc.ident, data)
    else:
        close_output(fd, proc)


def close_output(fd, proc):
    selector.unregister(fd)
    os.close(fd)
    proc.open.discard(fd)
    finish_if_done(proc)


def finish_if_done(proc, force=False):
    if proc.status is None or (proc.open and not force):
        return
    for fd in list(proc.open):
        # Drain what is already there; a background child still holding the pipe does not hold up the exit.
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            send(proc.kinds[fd], proc.ident, data)
        selector.unregister(fd)
        os.close(fd)
    proc.open.clear()
    drop_stdin(proc)
    code, sig = proc.status
    send_json(EXIT, proc.ident, {"code": code, "signal": sig})
    procs.pop(proc.ident, None)


def drop_stdin(proc):
    if proc.stdin is not None:
        try:
            selector.unregister(proc.stdin)
        except (KeyError, ValueError):
            pass
        os.close(proc.stdin)
        proc.stdin = None


def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        proc = by_pid.pop(pid, None)
        if proc is None:
            continue  # an orphan the sandbox's code left behind, reparented to this init
        proc.popen.returncode = 0  # reaped here, not by Popen
        proc.status = (os.WEXITSTATUS(status), None) if os.WIFEXITED(status) else (None, os.WTERMSIG(status))
        proc.reaped_at = time.monotonic()
        finish_if_done(proc)


def write_input(proc):
    while proc.pending and proc.stdin is not None:
        try:
            n = os.write(proc.stdin, proc.pending)
        except BlockingIOError:
            break
        except OSError:
            proc.pending.clear()
            drop_stdin(proc)
            return
        del proc.pending[:n]
    if proc.stdin is None:
        return
    fd = proc.stdin
    want = bool(proc.pending)
    try:
        selector.modify(fd, selectors.EVENT_WRITE, ("in", proc, None)) if want else selector.unregister(fd)
    except KeyError:
        if want:
            selector.register(fd, selectors.EVENT_WRITE, ("in", proc, None))
    if not want and proc.close_stdin:
        drop_stdin(proc)


def process_count():
    """Processes in the sandbox besides this init (its /proc is the sandbox's own pid namespace)."""
    return sum(1 for name in os.listdir("/proc") if name.isdigit()) - 1


def process_of(ident):
    proc = procs.get(ident)
    if proc is None or proc.status is not None:
        raise Failure("not_found", "the process has ended")
    return proc


# ---- files ----------------------------------------------------------------------------------------------------------

def inside(path):
    return any(path == root or path.startswith(root + "/") for root in ROOTS)


def resolve(path, follow):
    """The path as the sandbox sees it: relative to the home, never outside the home or /tmp, not even by a symlink."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise Failure("invalid", "a path is required")
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    if not path.startswith("/"):
        path = HOME + "/" + path
    lexical = os.path.normpath(path)
    if lexical.startswith("//"):
        lexical = lexical[1:]
    if not inside(lexical):
        raise Failure("outside", f"'{path}' is outside the sandbox's work directory ({HOME}) and /tmp")
    if follow or lexical in ROOTS:
        real = os.path.realpath(lexical)
    else:
        parent, name = os.path.split(lexical)
        real = os.path.join(os.path.realpath(parent), name)
    if not inside(real):
        raise Failure("outside", f"'{path}' leads outside the sandbox's work directory through a symlink")
    return real


def entry(path, lst=None):
    if lst is None:
        lst = os.lstat(path)
    kind = "dir" if st.S_ISDIR(lst.st_mode) else "symlink" if st.S_ISLNK(lst.st_mode) else "file"
    try:
        owner = pwd.getpwuid(lst.st_uid).pw_name
    except KeyError:
        owner = str(lst.st_uid)
    try:
        group = grp.getgrgid(lst.st_gid).gr_name
    except KeyError:
        group = str(lst.st_gid)
    mode = st.filemode(lst.st_mode)
    info = {
        "name": os.path.basename(path) or path, "type": kind, "path": path, "size": lst.st_size,
        "mode": st.S_IMODE(lst.st_mode), "permissions": ("L" + mode[1:]) if mode.startswith("l") else mode,
        "owner": owner, "group": group, "modifiedTime": lst.st_mtime_ns,
    }
    if kind == "symlink":
        info["symlinkTarget"] = os.readlink(path)
    return info


def os_failure(e, path):
    code = {errno.ENOENT: "not_found", errno.ENOTDIR: "not_found", errno.EEXIST: "exists", errno.EISDIR: "is_dir",
            errno.ENOSPC: "no_space", errno.EDQUOT: "no_space", errno.ENOTEMPTY: "invalid", errno.EACCES: "denied",
            errno.EPERM: "denied", errno.ELOOP: "outside", errno.EROFS: "denied"}.get(e.errno, "io")
    return Failure(code, f"'{path}': {e.strerror}")


def fs(ident, request):
    op = request.get("op")
    path = request.get("path")
    try:
        if op == "stat":
            target = resolve(path, follow=False)
            send_json(FS_OK, ident, entry(target))
        elif op == "list":
            target = resolve(path, follow=True)
            if not os.path.isdir(target):
                raise Failure("not_dir" if os.path.exists(target) else "not_found", f"'{path}' is not a directory")
            depth = max(1, int(request.get("depth") or 1))
            entries = []
            walk(target, depth, entries)
            send_json(FS_OK, ident, {"entries": entries, "truncated": len(entries) >= MAX_LIST})
        elif op == "mkdir":
            target = resolve(path, follow=True)
            if os.path.isdir(target):
                raise Failure("exists", f"'{path}' already exists")
            if os.path.lexists(target):
                raise Failure("invalid", f"'{path}' exists and is not a directory")
            os.makedirs(target, exist_ok=True)
            send_json(FS_OK, ident, entry(target))
        elif op == "move":
            source = resolve(path, follow=False)
            target = resolve(request.get("destination"), follow=False)
            if not os.path.lexists(source):
                raise Failure("not_found", f"'{path}' does not exist")
            if source == resolve(HOME, follow=True) or source in ROOTS:
                raise Failure("denied", "the work directory itself cannot be moved")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(source, target)
            send_json(FS_OK, ident, entry(target))
        elif op == "remove":
            target = resolve(path, follow=False)
            if target in ROOTS or target == resolve(HOME, follow=True):
                raise Failure("denied", "the work directory itself cannot be removed")
            if not os.path.lexists(target):
                raise Failure("not_found", f"'{path}' does not exist")
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.unlink(target)
            send_json(FS_OK, ident, {})
        elif op == "read":
            target = resolve(path, follow=True)
            limit = int(request.get("limit") or 0)
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                info = os.fstat(fd)
                if st.S_ISDIR(info.st_mode):
                    raise Failure("is_dir", f"'{path}' is a directory")
                if not st.S_ISREG(info.st_mode):
                    raise Failure("invalid", f"'{path}' is not a regular file")
                if limit and info.st_size > limit:
                    raise Failure("too_large", f"'{path}' is {info.st_size} bytes, more than the {limit} a read may return")
                send_json(FS_OK, ident, entry(target, os.lstat(target)))
                total = 0
                while True:
                    data = os.read(fd, CHUNK)
                    if not data:
                        break
                    total += len(data)
                    if limit and total > limit:
                        send_json(ERROR, ident, {"code": "too_large", "message": f"'{path}' grew past {limit} bytes while it was read"})
                        return
                    send(FS_DATA, ident, data)
                send_json(FS_END, ident, {"bytes": total})
            finally:
                os.close(fd)
        elif op == "write":
            final = resolve(path, follow=True)
            if os.path.isdir(final):
                raise Failure("is_dir", f"'{path}' is a directory")
            directory = os.path.dirname(final)
            os.makedirs(directory, exist_ok=True)
            temp = os.path.join(directory, f".sandstorm-upload-{ident}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            uploads[ident] = [fd, temp, final, 0, int(request.get("limit") or 0), None, path]
        else:
            raise Failure("invalid", f"unknown file operation '{op}'")
    except Failure as e:
        send_json(ERROR, ident, {"code": e.code, "message": str(e)})
    except OSError as e:
        f = os_failure(e, path)
        send_json(ERROR, ident, {"code": f.code, "message": str(f)})


def walk(directory, depth, entries):
    try:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda d: d.name)
    except OSError:
        return
    for item in items:
        if len(entries) >= MAX_LIST:
            return
        if item.name.startswith(".sandstorm-upload-"):
            continue
        try:
            entries.append(entry(item.path, item.stat(follow_symlinks=False)))
        except OSError:
            continue
        if depth > 1 and item.is_dir(follow_symlinks=False):
            walk(item.path, depth - 1, entries)


def upload_data(ident, data):
    upload = uploads.get(ident)
    if upload is None or upload[5] is not None:
        return
    upload[3] += len(data)
    if upload[4] and upload[3] > upload[4]:
        upload[5] = Failure("too_large", f"'{upload[6]}' is larger than the {upload[4]} bytes a file may have")
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(upload[0], view):]
    except OSError as e:
        upload[5] = os_failure(e, upload[6])


def upload_end(ident):
    upload = uploads.pop(ident, None)
    if upload is None:
        return
    fd, temp, final, _, _, failure, path = upload
    os.close(fd)
    try:
        if failure is not None:
            raise failure
        os.replace(temp, final)
        send_json(FS_OK, ident, entry(final))
    except Failure as e:
        send_json(ERROR, ident, {"code": e.code, "message": str(e)})
    except OSError as e:
        f = os_failure(e, path)
        send_json(ERROR, ident, {"code": f.code, "message": str(f)})
    finally:
        # Nothing half-written stays: a refused upload leaves the old file (or none) in place.
        if os.path.lexists(temp):
            os.unlink(temp)


# ---- control ----------------------------------------------------------------------------------------------------------

def handle(kind, ident, payload):
    try:
        if kind == EXEC:
            start(ident, json.loads(payload))
        elif kind == INPUT:
            proc = process_of(ident)
            if proc.stdin is None:
                raise Failure("no_stdin", "the process was started without stdin, or its stdin is closed")
            if len(proc.pending) + len(payload) > PENDING_INPUT_LIMIT:
                raise Failure("too_large", "the process is not reading its stdin")
            proc.pending += payload
            write_input(proc)
        elif kind == CLOSE_STDIN:
            proc = process_of(ident)
            proc.close_stdin = True
            write_input(proc)
        elif kind == SIGNAL:
            proc = process_of(ident)
            number = int(json.loads(payload).get("signal") or signal.SIGKILL)
            try:
                os.killpg(proc.popen.pid, number)
            except ProcessLookupError:
                os.kill(proc.popen.pid, number)
        elif kind == KILL_ALL:
            # As pid 1 of the sandbox's pid namespace, -1 reaches every other process in it, and only those.
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            send_json(PONG, ident, {"processes": process_count()})
        elif kind == PING:
            send_json(PONG, ident, {"processes": process_count()})
        elif kind == FS:
            fs(ident, json.loads(payload))
        elif kind == FS_DATA_IN:
            upload_data(ident, payload)
        elif kind == FS_END_IN:
            upload_end(ident)
    except Failure as e:
        send_json(ERROR, ident, {"code": e.code, "message": str(e)})
    except (ValueError, TypeError, OSError) as e:
        send_json(ERROR, ident, {"code": "invalid", "message": str(e)})


def main():
    control = 0
    os.set_blocking(control, False)
    selector.register(control, selectors.EVENT_READ, ("control", None, None))
    selector.register(wake_r, selectors.EVENT_READ, ("wake", None, None))
    buffer = bytearray()
    send_json(READY, 0, {"pid": os.getpid()})
    while True:
        waiting = [p for p in procs.values() if p.status is not None]
        timeout = None if not waiting else max(0.0, min(p.reaped_at for p in waiting) + EXIT_GRACE - time.monotonic())
        for key, _ in selector.select(timeout):
            role, proc, kind = key.data
            if role == "out":
                pump_output(key.fd, proc, kind)
            elif role == "in":
                write_input(proc)
            elif role == "wake":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
            else:
                try:
                    data = os.read(control, 1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    os._exit(0)
                buffer += data
                while len(buffer) >= HEADER.size:
                    kind_in, ident, length = HEADER.unpack_from(buffer)
                    if len(buffer) < HEADER.size + length:
                        break
                    payload = bytes(buffer[HEADER.size:HEADER.size + length])
                    del buffer[:HEADER.size + length]
                    handle(kind_in, ident, payload)
        now = time.monotonic()
        for p in [p for p in procs.values() if p.status is not None and now >= p.reaped_at + EXIT_GRACE]:
            finish_if_done(p, force=True)
        reap()


main()
