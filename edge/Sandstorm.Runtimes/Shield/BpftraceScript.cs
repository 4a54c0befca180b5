using System.Globalization;
using System.Text;

namespace Sandstorm.Runtimes.Shield;

/// <summary>
/// The bpftrace program of the monitor: tracepoints only (kprobes do not work on these machines).
/// </summary>
/// <remarks>
/// <para>
/// Attribution happens in the kernel. A process becomes a sandbox's "code" when, inside an execution's cgroup (the pids
/// v1 hierarchy, the group right under the sandboxes' parent), it execs something other than a runtime's own binary
/// (bwrap, runc, runsc, podman, conmon, a re-exec through /proc/self): its pid goes into the map <c>@code</c> with the
/// execution group's id (the cgroup directory's inode), and every process it forks inherits the entry. Every other probe
/// first looks its pid up there, so the rest of the host costs one hash lookup per traced syscall, and the runtime's own
/// set-up (bwrap's mounts and capset, runc's init) is never reported as the code's.
/// </para>
/// <para>
/// Syscalls the sandbox's seccomp filter refuses (ptrace, mount, unshare, setns, bpf, module calls) never reach their
/// <c>sys_enter</c> tracepoint: the kernel checks seccomp first. Their <c>sys_exit</c> tracepoint still fires (with the
/// filter's EPERM), so those syscalls are traced at both ends and reported once: at entry with their arguments when
/// they get that far, else at exit with the result.
/// </para>
/// <para>
/// Events are JSON arrays (bpftrace's <c>-f json</c> prints tuples that way, strings escaped): the first element is the
/// kind, then the execution group id, the monotonic time (ns), pid, parent pid, uid, comm. The arguments of an exec
/// follow on separate lines <c>F pid time path</c>, <c>A pid time head</c> (and <c>T pid time tail</c> when longer), printed with %r (non-printable
/// bytes escaped), because bpftrace 0.17 cannot put a buffer into a tuple.
/// </para>
/// </remarks>
internal static class BpftraceScript
{
    public const int StringLength = 200;

    /// <summary>Executables of the runtimes themselves: an exec of one of them does not make a process the sandbox's code.</summary>
    public static readonly string[] RuntimeBinaries =
    [
        "/usr/bin/bwrap", "/usr/bin/runc", "/usr/sbin/runc", "/usr/bin/runsc", "/usr/bin/podman", "/usr/bin/conmon",
        "/usr/libexec/podman/conmon", "/usr/bin/setpriv", "/usr/bin/crun",
    ];

    /// <summary>Opens of paths starting with these are not reported (the read-only system tree every interpreter reads).</summary>
    public static readonly string[] QuietOpenPrefixes = ["/usr/", "/lib", "/proc/self/", "/dev/null", "/dev/urandom", "/etc/ld.so.cache", "/etc/localtime"];

    // x86_64 numbers of the module syscalls, traced through raw_syscalls when the kernel has no tracepoints of their own.
    public static readonly Dictionary<long, string> ModuleSyscalls = new() { [175] = "init_module", [176] = "delete_module", [313] = "finit_module" };

    // Syscalls seccomp may refuse: traced at entry (arguments) and at exit (refused before entry).
    // (umount2's tracepoints are named after umount.)
    private static readonly string[] Guarded = ["ptrace", "mount", "umount", "unshare", "setns", "bpf", "pivot_root"];

    // fork and vfork (x86_64 has both): counted like a clone without CLONE_THREAD.
    private static string ForkProbe(Func<string, bool> hasTracepoint)
    {
        var probes = new[] { "sys_enter_fork", "sys_enter_vfork" }.Where(hasTracepoint).Select(t => "tracepoint:syscalls:" + t).ToList();
        return probes.Count == 0 ? string.Empty : string.Join(", ", probes) + " /@code[pid]/\n{\n  @forks[@code[pid]] = count();\n}\n";
    }

    public static string Build(int pidsSubsystem, int parentLevel, ulong parentId, Func<string, bool> hasTracepoint, TimeSpan forkInterval, bool rawModuleSyscalls)
    {
        var moduleTracepoints = hasTracepoint("sys_exit_finit_module");
        var s = new StringBuilder();
        var head = "@code[pid], $ts, pid, curtask->real_parent->tgid, uid, comm";
        s.Append(CultureInfo.InvariantCulture, $$"""
            tracepoint:sched:sched_process_exec
            {
              if (@code[pid] == 0) {
                $cg = curtask->cgroups->subsys[{{pidsSubsystem}}]->cgroup;
                if ($cg->level > {{parentLevel}}) {
                  $a = $cg;
                  unroll(8) { if ($a->level > {{parentLevel + 1}}) { $a = (struct cgroup *)$a->self.parent; } }
                  if (((struct cgroup *)$a->self.parent)->kn->id == {{parentId}}) {
                    $f = str(args->filename);
                    if ({{string.Join(" && ", RuntimeBinaries.Select(b => $"$f != \"{b}\""))}} && strncmp($f, "/proc/self/", 11) != 0 && strncmp($f, "/dev/fd/", 8) != 0) {
                      @code[pid] = $a->kn->id;
                    }
                  }
                }
              }
            }

            // Split in several probes on the same tracepoint (run in this order): BPF's 512-byte stack holds one long string each.
            tracepoint:sched:sched_process_exec /@code[pid]/
            {
              // bpftrace 0.17 resolves struct file's members from BTF only once it has seen mm->exe_file.
              $exe = curtask->mm->exe_file;
              $ts = nsecs;
              @exects[tid] = $ts;
              $fdt = curtask->files->fdt;
              $f0 = *$fdt->fd;
              $f1 = *($fdt->fd + 1);
              $m0 = ((struct inode *)$f0->f_inode)->i_mode;
              $m1 = ((struct inode *)$f1->f_inode)->i_mode;
              $s0 = (uint64)0;
              $s1 = (uint64)0;
              if (($m0 & 0xF000) == 0xC000) { $s0 = ((struct socket *)$f0->private_data)->sk->__sk_common.skc_family; }
              if (($m1 & 0xF000) == 0xC000) { $s1 = ((struct socket *)$f1->private_data)->sk->__sk_common.skc_family; }
              print((1, {{head}}, curtask->real_parent->comm, $m0, $s0, $m1, $s1));
            }

            tracepoint:sched:sched_process_exec /@code[pid]/
            {
              printf("F %d %llu %s\n", pid, @exects[tid], str(args->filename));
            }

            tracepoint:sched:sched_process_exec /@code[pid]/
            {
              $as = curtask->mm->arg_start;
              $ae = curtask->mm->arg_end;
              printf("A %d %llu %r\n", pid, @exects[tid], buf(uptr($as), $ae - $as));
            }

            tracepoint:sched:sched_process_exec /@code[pid]/
            {
              $as = curtask->mm->arg_start;
              $ae = curtask->mm->arg_end;
              if ($ae - $as > {{StringLength}}) {
                printf("T %d %llu %r\n", pid, @exects[tid], buf(uptr($ae - {{StringLength}}), {{StringLength}}));
              }
              delete(@exects[tid]);
            }

            tracepoint:sched:sched_process_fork /@code[pid]/
            {
              @code[args->child_pid] = @code[pid];
            }

            tracepoint:sched:sched_process_exit /@code[pid] && tid == pid/
            {
              delete(@code[pid]);
            }

            tracepoint:syscalls:sys_enter_clone /@code[pid]/
            {
              if ((args->clone_flags & 0x10000) == 0) { @forks[@code[pid]] = count(); }
            }

            {{ForkProbe(hasTracepoint)}}
            interval:ms:{{(int)forkInterval.TotalMilliseconds}}
            {
              print(@forks);
              clear(@forks);
            }

            interval:s:10
            {
              clear(@openseen);
            }

            tracepoint:syscalls:sys_enter_connect /@code[pid]/
            {
              $ts = nsecs;
              $p = (uint64)args->uservaddr;
              $fam = *(uint16 *)uptr($p);
              if ($fam == 2 || $fam == 10) {
                print((2, {{head}}, $fam, *(uint16 *)uptr($p + 2), *(uint32 *)uptr($p + 4), *(uint64 *)uptr($p + 8), *(uint64 *)uptr($p + 16)));
              }
            }

            tracepoint:syscalls:sys_enter_bind /@code[pid]/
            {
              $ts = nsecs;
              $p = (uint64)args->umyaddr;
              $fam = *(uint16 *)uptr($p);
              if ($fam == 2 || $fam == 10) {
                print((3, {{head}}, $fam, *(uint16 *)uptr($p + 2), *(uint32 *)uptr($p + 4), *(uint64 *)uptr($p + 8), *(uint64 *)uptr($p + 16)));
              }
            }

            tracepoint:syscalls:sys_enter_listen /@code[pid]/
            {
              $ts = nsecs;
              print((4, {{head}}, args->fd, args->backlog));
            }


            """);
        foreach (var (probe, syscall, flags) in new[] { ("sys_enter_openat", "openat", "args->flags"), ("sys_enter_open", "open", "args->flags"), ("sys_enter_openat2", "openat2", "(uint64)0") })
        {
            if (!hasTracepoint(probe))
            {
                continue;
            }

            s.Append(CultureInfo.InvariantCulture, $$"""
                tracepoint:syscalls:{{probe}} /@code[pid]/
                {
                  $f = str(args->filename);
                  if ({{string.Join(" && ", QuietOpenPrefixes.Select(p => $"strncmp($f, \"{p}\", {p.Length}) != 0"))}}) {
                    @openpass[tid] = 1;
                  }
                }

                // A process opening the same path again adds nothing a rule could use: reported once (the set is cleared
                // every 10 s, so it stays bounded). Each step is a probe of its own: BPF's stack holds one long string.
                tracepoint:syscalls:{{probe}} /@openpass[tid]/
                {
                  delete(@openpass[tid]);
                  $f = str(args->filename);
                  if (@openseen[pid, $f] == 0) {
                    @openseen[pid, $f] = 1;
                    @openemit[tid] = 1;
                  }
                }

                tracepoint:syscalls:{{probe}} /@openemit[tid]/
                {
                  delete(@openemit[tid]);
                  $ts = nsecs;
                  @opened[tid] = $ts;
                  print((5, {{head}}, "{{syscall}}", {{flags}}));
                }

                // The path on a line of its own (O pid time path).
                tracepoint:syscalls:{{probe}} /@opened[tid]/
                {
                  printf("O %d %llu %s\n", pid, @opened[tid], str(args->filename));
                  delete(@opened[tid]);
                }


                """);
        }

        foreach (var (syscall, arguments) in new[]
        {
            ("setuid", "args->uid, (uint64)0xffffffff, (uint64)0xffffffff"),
            ("setgid", "args->gid, (uint64)0xffffffff, (uint64)0xffffffff"),
            ("setreuid", "args->ruid, args->euid, (uint64)0xffffffff"),
            ("setregid", "args->rgid, args->egid, (uint64)0xffffffff"),
            ("setresuid", "args->ruid, args->euid, args->suid"),
            ("setresgid", "args->rgid, args->egid, args->sgid"),
            ("setfsuid", "args->uid, (uint64)0xffffffff, (uint64)0xffffffff"),
            ("setfsgid", "args->gid, (uint64)0xffffffff, (uint64)0xffffffff"),
        })
        {
            if (!hasTracepoint("sys_enter_" + syscall))
            {
                continue;
            }

            s.Append(CultureInfo.InvariantCulture, $$"""
                tracepoint:syscalls:sys_enter_{{syscall}} /@code[pid]/
                {
                  $ts = nsecs;
                  print((6, {{head}}, "{{syscall}}", (uint64){{arguments.Replace(", ", ", (uint64)", StringComparison.Ordinal)}}));
                }


                """);
        }

        s.Append(CultureInfo.InvariantCulture, $$"""
            tracepoint:syscalls:sys_enter_capset /@code[pid]/
            {
              $ts = nsecs;
              print((7, {{head}}));
            }


            """);
        foreach (var syscall in Guarded)
        {
            if (!hasTracepoint("sys_enter_" + syscall) || !hasTracepoint("sys_exit_" + syscall))
            {
                continue;
            }

            var arguments = syscall == "ptrace" ? "args->request, args->pid" : syscall is "unshare" ? "args->unshare_flags, (uint64)0" : "(uint64)0, (uint64)0";
            s.Append(CultureInfo.InvariantCulture, $$"""
                tracepoint:syscalls:sys_enter_{{syscall}} /@code[pid]/
                {
                  $ts = nsecs;
                  @entered[tid] = 1;
                  print((8, {{head}}, "{{syscall}}", (int64){{arguments.Replace(", ", ", (int64)", StringComparison.Ordinal)}}));
                }

                tracepoint:syscalls:sys_exit_{{syscall}} /@code[pid]/
                {
                  $ts = nsecs;
                  if (@entered[tid]) {
                    delete(@entered[tid]);
                  } else {
                    print((9, {{head}}, "{{syscall}}", args->ret));
                  }
                }


                """);
        }

        if (!moduleTracepoints && rawModuleSyscalls)
        {
            // No tracepoints of their own (a kernel without module support): raw_syscalls runs for every syscall on
            // the host, so the syscall number is tested before the map lookup.
            s.Append(CultureInfo.InvariantCulture, $$"""
                tracepoint:raw_syscalls:sys_exit /({{string.Join(" || ", ModuleSyscalls.Keys.Select(k => $"args->id == {k}"))}}) && @code[pid]/
                {
                  $ts = nsecs;
                  print((10, {{head}}, args->id, args->ret));
                }

                """);
        }
        else if (moduleTracepoints)
        {
            foreach (var syscall in ModuleSyscalls.Values)
            {
                s.Append(CultureInfo.InvariantCulture, $$"""
                    tracepoint:syscalls:sys_exit_{{syscall}} /@code[pid]/
                    {
                      $ts = nsecs;
                      print((9, {{head}}, "{{syscall}}", args->ret));
                    }


                    """);
            }
        }

        return s.ToString();
    }
}
