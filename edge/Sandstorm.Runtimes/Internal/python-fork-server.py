# Sandstorm's Python fork server (isolation "none" only; see PythonForkServer.cs).
#
# One interpreter, started once, forks a child per run: the child joins the run's cgroups, takes the run's stdio, working
# directory and environment, and runs the main file as __main__, then exits the way `python3 -u main.py` would. Starting an
# interpreter costs tens of milliseconds of CPU; a fork costs a few.
#
# Protocol, one JSON object per line. In (stdin): {"id", "main", "cwd", "env", "stdout", "stderr", "procs", "fsize"[, "hold"]};
# stdout and stderr name FIFOs the host already holds open for reading. Out (stdout): {"ready": pid} once, then {"id", "pid"} or {"id", "error"} per request, and {"id", "exit"} when that child ends (128 + n for signal n).
# End of stdin ends the server; each child has a parent-death signal, so none outlives it.
import atexit, builtins, ctypes, gc, fcntl, io, json, os, resource, selectors, signal, sys, types

PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
server_pid = os.getpid()
reply_fd = os.dup(1)
wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
encoding, errors = sys.stdout.encoding, sys.stdout.errors
server_modules = set(sys.modules)


def reply(message):
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(reply_fd, data):]


def exit_status(e):
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def clear_module(module):
    """What the interpreter does to a module's globals at exit: _names first, then the rest, __builtins__ kept."""
    names = [n for n in list(module.__dict__) if n != "__builtins__"]
    for first in (True, False):
        for name in names:
            if name.startswith("_") == first and not (first and name.startswith("__")):
                module.__dict__[name] = None
    for name in names:
        module.__dict__[name] = None


def finish(status):
    """The interpreter's shutdown for what the run created, without touching (copying) the server's own memory."""
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as e:
        status = exit_status(e)
    except BaseException:
        pass
    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() == 1:
        # Module globals are released (__main__ first, then what the run imported, newest first) and cycles collected, so
        # __del__ methods run and files the code left open are flushed and closed. With daemon threads still running the
        # interpreter would freeze them first; here they are left alone and only the streams are flushed.
        ours = [m for n, m in list(sys.modules.items()) if n not in server_modules and n != "__main__"]
        for module in [sys.modules.get("__main__")] + ours[::-1]:
            if isinstance(module, types.ModuleType):
                try:
                    clear_module(module)
                except BaseException:
                    pass
        gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            status = 120
    return status


def child(request, out_fd, err_fd):
    """Never returns: becomes the run, then exits."""
    # Everything the server allocated is left out of garbage collection from now on: a collection would write to every
    # object's header and so copy every page of the server's heap.
    gc.freeze()
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != server_pid:
            os._exit(125)
        pid = str(os.getpid())
        for procs in request["procs"]:
            with open(procs, "w") as f:
                f.write(pid)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        # Closed through its object, which would otherwise close the descriptor number again if it were ever finalised.
        selector.close()
        os.closerange(3, 1 << 20)
        resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], request["fsize"]))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # A cold start's /bin/sh launcher exports PWD.
        os.environ["PWD"] = request["cwd"]
        # As `python3 -u`: unbuffered text streams over the new descriptors.
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.open(0, "rb", closefd=False), encoding, errors)
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding, errors, write_through=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding, "backslashreplace", write_through=True)
        main = request["main"]
        sys.argv = [main]
        sys.path[0] = os.path.dirname(main)
        module = types.ModuleType("__main__")
        module.__file__, module.__cached__, module.__builtins__ = main, None, builtins
        sys.modules["__main__"] = module
    except BaseException as e:
        os.write(2, f"sandstorm fork server: {e}\n".encode(errors="replace"))
        os._exit(125)

    status = 0
    try:
        with open(main, "rb") as f:
            source = f.read()
        exec(compile(source, main, "exec"), module.__dict__)
    except SystemExit as e:
        status = exit_status(e)
    except BaseException as e:
        # The traceback starts at the run's code, not at this function.
        e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        # An unhandled KeyboardInterrupt ends an interpreter by SIGINT, which the host reads as 128 + 2.
        status = 130 if isinstance(e, KeyboardInterrupt) else 1
        e = None
    os._exit(finish(status))


def start(request):
    fds = []
    try:
        # Non-blocking opens succeed at once because the host holds the read ends; the child writes blocking.
        for name in ("stdout", "stderr"):
            fds.append(os.open(request[name], os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            fcntl.fcntl(fds[-1], fcntl.F_SETFL, fcntl.fcntl(fds[-1], fcntl.F_GETFL) & ~os.O_NONBLOCK)
        pid = os.fork()
    except OSError as e:
        for fd in fds:
            os.close(fd)
        reply({"id": request["id"], "error": str(e)})
        return
    if pid == 0:
        child(request, *fds)
    for fd in fds:
        os.close(fd)
    running[pid] = request["id"]
    if request.get("hold"):
        # Tests only: widens the window between the fork and the answer.
        import time
        time.sleep(request["hold"])
    reply({"id": request["id"], "pid": pid})


def reap():
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        reply({"id": running.pop(pid), "exit": code if code >= 0 else 128 - code})


running = {}
selector = selectors.DefaultSelector()
selector.register(0, selectors.EVENT_READ)
selector.register(wake_r, selectors.EVENT_READ)
reply({"ready": server_pid})
pending = b""
while True:
    for key, _ in selector.select():
        if key.fd == wake_r:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            continue
        data = os.read(0, 65536)
        if not data:
            sys.exit(0)
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                start(json.loads(line))
    reap()
