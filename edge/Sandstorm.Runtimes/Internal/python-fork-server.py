# Sandstorm's Python fork server (isolation "none" only; see PythonForkServer.cs).
#
# One interpreter, started once, forks a child per run: the child joins the run's cgroups, takes the run's stdio, working
# directory and environment, and runs the main file as __main__, then exits the way `python3 -u main.py` would. Starting an
# interpreter costs tens of milliseconds of CPU; a fork costs a few.
#
# Protocol, one JSON object per line. In (stdin): {"id", "main", "cwd", "env", "stdout", "stderr", "procs", "fsize"};
# stdout and stderr name FIFOs the host already holds open for reading. Out (stdout): {"ready": pid} once, then {"id", "pid"} or {"id", "error"} per request, and {"id", "exit"} when that child ends (128 + n for signal n).
# End of stdin ends the server; each child has a parent-death signal, so none outlives it.
import atexit, builtins, ctypes, fcntl, io, json, os, resource, selectors, signal, sys, types

PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)
server_pid = os.getpid()
reply_fd = os.dup(1)
wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
encoding, errors = sys.stdout.encoding, sys.stdout.errors


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


def child(request, out_fd, err_fd):
    """Never returns: becomes the run, then exits."""
    status = 125
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

    interrupted = False
    try:
        with open(main, "rb") as f:
            source = f.read()
        exec(compile(source, main, "exec"), module.__dict__)
        status = 0
    except SystemExit as e:
        status = exit_status(e)
    except BaseException as e:
        # The traceback starts at the run's code, not at this function.
        e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        status = 1
        interrupted = isinstance(e, KeyboardInterrupt)

    # The interpreter's own shutdown, in its order: non-daemon threads, atexit handlers, then the streams.
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as e:
        status = exit_status(e)
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            status = 120
    if interrupted:
        # An unhandled KeyboardInterrupt ends the interpreter by SIGINT, so its parent sees the signal.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status)


def start(request):
    out_fd = err_fd = -1
    try:
        # Non-blocking opens succeed at once because the host holds the read ends; the child writes blocking.
        out_fd = os.open(request["stdout"], os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        err_fd = os.open(request["stderr"], os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        for fd in (out_fd, err_fd):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        pid = os.fork()
        if pid == 0:
            child(request, out_fd, err_fd)
        running[pid] = request["id"]
        reply({"id": request["id"], "pid": pid})
    except OSError as e:
        reply({"id": request["id"], "error": str(e)})
    finally:
        for fd in (out_fd, err_fd):
            if fd >= 0:
                os.close(fd)


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
