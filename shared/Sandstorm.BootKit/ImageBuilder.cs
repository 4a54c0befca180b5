using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Sandstorm.BootKit;

/// <summary>
/// The disk image: mmdebstrap makes the suite's root file system (with a kernel, systemd and what the agent needs), the
/// Dockerfile's steps run in it (chroot, in a private mount namespace), the agent and its units go in, then the root is
/// hashed (<see cref="BuildReport.Digest"/>), packed as a squashfs netboot root and as a raw ext4 disk written without
/// mounting (<c>mkfs.ext4 -d</c>; booted with QEMU <c>-kernel/-initrd</c> or any loader given the netboot kernel), and
/// converted to qcow2.
/// </summary>
internal static class ImageBuilder
{
    internal sealed record Result(string Digest, long RootBytes, IReadOnlyList<string> Packages);

    /// <summary>Packages every image gets: boot, network, the agent's sandbox runtime and languages.</summary>
    private static IEnumerable<string> BasePackages(BaseSuite suite) =>
    [
        "systemd-sysv", "udev", "initramfs-tools", "live-boot", suite.Distribution == "ubuntu" ? "linux-image-virtual" : "linux-image-amd64",
        "ca-certificates", "iproute2", "bubblewrap", "python3", "util-linux", "procps",
    ];

    public static async Task<Result> BuildAsync(BuildPlan plan, BootKitBuildOptions options, string staging, Processes run, TextWriter progress, CancellationToken ct)
    {
        var work = Path.Combine(staging, ".work");
        var root = Path.Combine(work, "rootfs");
        Directory.CreateDirectory(work);
        try
        {
            progress.WriteLine($"bootkit: mmdebstrap {plan.Base.Suite} (downloads the packages; minutes)");
            // In a private mount namespace: the /proc, /sys and /dev mounts mmdebstrap makes in the root vanish with it, even
            // when it is killed (a cancelled build), so deleting the staging folder never meets a live mount.
            var debstrap = new List<string>
            {
                "unshare", "--mount", "--propagation", "private",
                "mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
                "--include=" + string.Join(',', BasePackages(plan.Base)),
                // Services must not start inside the build's chroot.
                "--essential-hook=printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\" && chmod 0755 \"$1/usr/sbin/policy-rc.d\"",
                plan.Base.Suite, root,
            };
            if (options.Mirror is { } mirror)
            {
                debstrap.Add(mirror);
            }

            await run.RunAsync(debstrap, ct);

            progress.WriteLine($"bootkit: {plan.Steps.Count} Dockerfile step(s)");
            var script = Path.Combine(work, "steps.sh");
            await File.WriteAllTextAsync(script, StepsScript(plan, root), ct);
            // A private mount namespace: /proc, /sys and /dev mounted for the steps vanish with it, even on failure.
            await run.RunAsync(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-eu", script], ct);

            progress.WriteLine("bootkit: agent and units");
            InstallAgent(plan, options, root);
            await run.RunAsync(["systemd-sysusers", "--root=" + root], ct);
            await run.RunAsync(["systemctl", "--root=" + root, "enable", .. AgentUnits.Enabled(plan), "systemd-networkd.service"], ct);
            File.Delete(Path.Combine(root, "usr/sbin/policy-rc.d"));

            var packages = (await run.RunAsync(["chroot", root, "dpkg-query", "-W", "-f", "${Package}=${Version}\n"], ct))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();

            var netboot = Path.Combine(staging, "netboot");
            Directory.CreateDirectory(netboot);
            var kernel = Directory.GetFiles(Path.Combine(root, "boot"), "vmlinuz-*").Order(StringComparer.Ordinal).LastOrDefault()
                ?? throw new BootKitBuildException("the root file system has no kernel (/boot/vmlinuz-*)");
            var initrd = Path.Combine(root, "boot", "initrd.img-" + Path.GetFileName(kernel)["vmlinuz-".Length..]);
            if (!File.Exists(initrd))
            {
                throw new BootKitBuildException($"the root file system has no initramfs for {Path.GetFileName(kernel)}");
            }

            File.Copy(kernel, Path.Combine(netboot, "vmlinuz"));
            File.Copy(initrd, Path.Combine(netboot, "initrd.img"));

            progress.WriteLine("bootkit: digest of the root file system");
            var (digest, bytes) = await DigestAsync(root, run, ct);
            var imageFile = Path.Combine(root, AgentUnits.ImageFile.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(imageFile)!);
            await File.WriteAllTextAsync(imageFile, JsonSerializer.Serialize(new { name = options.ImageName, digest }) + "\n", ct);

            progress.WriteLine("bootkit: squashfs netboot root");
            await run.RunAsync(["mksquashfs", root, Path.Combine(netboot, "filesystem.squashfs"), "-noappend", "-quiet", "-comp", "zstd", "-e", "boot"], ct);
            await File.WriteAllTextAsync(Path.Combine(netboot, "README"), $"""
                Netboot bundle of {options.ImageName} ({digest}).
                PXE/iPXE: kernel vmlinuz, initrd initrd.img, kernel command line
                  boot=live fetch=http://SERVER/filesystem.squashfs console=ttyS0 sandstorm.control_plane=URL
                and the enrolment token as the systemd credential {AgentUnits.TokenCredential} (SMBIOS type 11).

                """, ct);

            progress.WriteLine("bootkit: raw ext4 disk and qcow2");
            var raw = Path.Combine(staging, "disk.raw");
            // Room for the files plus ext4's own metadata and some free space for the agent's work.
            var size = (bytes * 13 / 10) + (512L << 20);
            await run.RunAsync(["truncate", "-s", size.ToString(System.Globalization.CultureInfo.InvariantCulture), raw], ct);
            await run.RunAsync(["mkfs.ext4", "-q", "-L", "bootkit-root", "-d", root, raw], ct);
            await run.RunAsync(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, Path.Combine(staging, "disk.qcow2")], ct);
            await File.WriteAllLinesAsync(Path.Combine(staging, "packages.txt"), packages, ct);
            return new Result(digest, bytes, packages);
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>The Dockerfile's steps as a shell script run as root in a private mount namespace.</summary>
    private static string StepsScript(BuildPlan plan, string root)
    {
        var r = ShellQuote.Sh(root);
        var sb = new StringBuilder();
        sb.Append("# Generated by BootKit: the Dockerfile's steps, run in a private mount namespace.\n");
        sb.Append($"mount --make-rprivate /\nmount -t proc proc {r}/proc\nmount --rbind /sys {r}/sys\nmount --rbind /dev {r}/dev\n");
        sb.Append($"cp /etc/resolv.conf {r}/etc/resolv.conf.bootkit 2>/dev/null || true\n");
        sb.Append($"if [ -s {r}/etc/resolv.conf.bootkit ]; then mv {r}/etc/resolv.conf {r}/etc/resolv.conf.saved 2>/dev/null || true; mv {r}/etc/resolv.conf.bootkit {r}/etc/resolv.conf; fi\n");
        foreach (var step in plan.Steps)
        {
            sb.Append($"echo 'bootkit: Dockerfile line {step.Line}' >&2\n");
            switch (step)
            {
                case RunStep run:
                    var env = new List<string> { "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", $"HOME={(run.User == "root" ? "/root" : "/")}" };
                    env.AddRange(run.Environment.Select(e => $"{e.Key}={e.Value}"));
                    var who = run.User.Split(':');
                    var inner = new List<string> { "chroot", root };
                    if (run.User != "root")
                    {
                        inner.AddRange(["runuser", "-u", who[0]]);
                        if (who.Length == 2)
                        {
                            inner.AddRange(["-g", who[1]]);
                        }

                        inner.Add("--");
                    }

                    // cd inside the chroot, then the command with the step's environment.
                    inner.AddRange(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", run.WorkingDirectory, .. env, .. run.Argv]);
                    sb.Append(ShellQuote.Sh(inner)).Append('\n');
                    break;
                case WorkdirStep wd:
                    sb.Append($"mkdir -p {r}{ShellQuote.Sh(wd.Path)}\n");
                    break;
                case CopyStep copy:
                    foreach (var source in copy.Sources)
                    {
                        var from = ShellQuote.Sh(Path.Combine(plan.Context, source));
                        var isDir = Directory.Exists(Path.Combine(plan.Context, source)) && new FileInfo(Path.Combine(plan.Context, source)).LinkTarget is null;
                        var dest = copy.DestinationIsDirectory && !isDir ? copy.Destination.TrimEnd('/') + "/" + Path.GetFileName(source) : copy.Destination.TrimEnd('/');
                        var to = ShellQuote.Sh(root + dest);
                        if (isDir)
                        {
                            sb.Append($"mkdir -p {to}\ncp -a --no-preserve=ownership {from}/. {to}/\n");
                        }
                        else
                        {
                            sb.Append($"mkdir -p \"$(dirname {to})\"\ncp -a --no-preserve=ownership {from} {to}\n");
                        }

                        if (copy.Chown is { } chown)
                        {
                            sb.Append(ShellQuote.Sh(["chroot", root, "chown", "-R", chown, dest])).Append('\n');
                        }

                        if (copy.Chmod is { } chmod)
                        {
                            sb.Append(ShellQuote.Sh(["chmod", "-R", chmod, root + dest])).Append('\n');
                        }
                    }

                    break;
            }
        }

        sb.Append($"if [ -e {r}/etc/resolv.conf.saved ] || [ -L {r}/etc/resolv.conf.saved ]; then mv {r}/etc/resolv.conf.saved {r}/etc/resolv.conf; fi\n");
        return sb.ToString();
    }

    private static void InstallAgent(BuildPlan plan, BootKitBuildOptions options, string root)
    {
        BootKitBuilder.WriteTree(root, AgentUnits.Files(plan, bootc: false));
        var binary = Path.Combine(root, AgentUnits.AgentBinary.TrimStart('/'));
        File.Copy(options.AgentBinary!, binary, overwrite: true);
        File.SetUnixFileMode(binary, (UnixFileMode)0b111_101_101);
        BootKitBuilder.WriteTree(root, new Dictionary<string, string>
        {
            ["etc/systemd/network/20-wired.network"] = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
            ["etc/hostname"] = "bootkit\n",
            ["etc/fstab"] = "LABEL=bootkit-root / ext4 defaults 0 1\n",
        });
    }

    /// <summary>
    /// sha256 over the root's manifest: for every entry, sorted by path, its path, type, mode, owner, and its content's
    /// sha256 (files) or target (symlinks). Also the root's total file size.
    /// </summary>
    private static async Task<(string Digest, long Bytes)> DigestAsync(string root, Processes run, CancellationToken ct)
    {
        var listing = await run.RunAsync(["find", root, "-xdev", "-mindepth", "1", "-printf", "%P\\0%y\\0%m\\0%U\\0%G\\0%l\\0"], ct);
        var fields = listing.Split('\0');
        var entries = new List<(string Path, string Line)>();
        long bytes = 0;
        for (var i = 0; i + 5 < fields.Length; i += 6)
        {
            var (path, type, mode, uid, gid, link) = (fields[i], fields[i + 1], fields[i + 2], fields[i + 3], fields[i + 4], fields[i + 5]);
            var content = "";
            if (type == "f")
            {
                await using var stream = File.OpenRead(Path.Combine(root, path));
                bytes += stream.Length;
                content = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
            }
            else if (type == "l")
            {
                content = link;
            }

            entries.Add((path, $"{path}\0{type}\0{mode}\0{uid}\0{gid}\0{content}\n"));
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (_, line) in entries.OrderBy(e => e.Path, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(line));
        }

        return ("sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset()), bytes);
    }
}
