using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The kernel, initramfs and read-only /usr filesystem a microVM boots, built once from Debian packages
/// (<c>microvm-image.sh</c>) into a directory named after the build and init scripts, so a changed init builds anew.
/// </summary>
internal sealed class MicroVmImage
{
    private static readonly SemaphoreSlim Building = new(1, 1);

    private MicroVmImage(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string Kernel => Path.Combine(Directory, "vmlinuz");

    public string Initramfs => Path.Combine(Directory, "initramfs");

    public string Usr => Path.Combine(Directory, "usr.ext4");

    public string KernelRelease => File.ReadAllText(Path.Combine(Directory, "kernel-release")).Trim();

    /// <summary>The image for these options, built first when it is missing; throws with the build's output when that fails.</summary>
    public static async Task<MicroVmImage> EnsureAsync(RuntimeOptions options, CancellationToken ct)
    {
        var build = Resource("microvm-image.sh");
        var init = Resource("microvm-init.sh");
        var root = options.MicroVmImageRoot ?? Path.Combine(options.WorkRoot, "microvm-image");
        var name = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(build + "\0" + init)))[..16];
        var image = new MicroVmImage(Path.Combine(root, name));
        if (File.Exists(image.Usr))
        {
            return image;
        }

        await Building.WaitAsync(ct);
        try
        {
            if (File.Exists(image.Usr))
            {
                return image;
            }

            System.IO.Directory.CreateDirectory(root, WorkRoot.Private);
            var scripts = Path.Combine(root, "scripts-" + Environment.ProcessId);
            System.IO.Directory.CreateDirectory(scripts, WorkRoot.Private);
            try
            {
                File.WriteAllText(Path.Combine(scripts, "microvm-image.sh"), build);
                File.WriteAllText(Path.Combine(scripts, "microvm-init.sh"), init);
                var (exit, output) = await RunAsync(Path.Combine(scripts, "microvm-image.sh"), image.Directory, Path.Combine(scripts, "microvm-init.sh"), ct);
                if (exit != 0 || !File.Exists(image.Usr))
                {
                    throw new InvalidOperationException($"building the microVM image from Debian packages failed (exit {exit}): {output}");
                }
            }
            finally
            {
                WorkRootPaths.DeleteDirectory(scripts);
            }

            return image;
        }
        finally
        {
            Building.Release();
        }
    }

    private static async Task<(int Exit, string Output)> RunAsync(string script, string output, string init, CancellationToken ct)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(output);
        psi.ArgumentList.Add(init);
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        using var process = System.Diagnostics.Process.Start(psi)!;
        process.StandardInput.Close();
        using var abort = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(abort.Token, ct);
        var stdout = BoundedOutput.ReadAsync(process.StandardOutput.BaseStream, 16 * 1024, linked.Token);
        var stderr = BoundedOutput.ReadAsync(process.StandardError.BaseStream, 16 * 1024, linked.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }

        var text = Encoding.UTF8.GetString((await stdout).Bytes) + Encoding.UTF8.GetString((await stderr).Bytes);
        return (process.ExitCode, text.Trim());
    }

    private static string Resource(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
