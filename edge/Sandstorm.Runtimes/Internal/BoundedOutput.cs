using System.IO.Pipes;
using System.Runtime.InteropServices;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Reads a child's output pipe to its end keeping at most a cap of bytes. Past the cap the rest is still drained
/// so the writer never blocks, but by splice(2) into /dev/null: a gigabyte of output then costs the host no copy.
/// </summary>
internal static class BoundedOutput
{
    private const int ChunkBytes = 1024 * 1024;
    private const int F_SETPIPE_SZ = 1031;
    private const short POLLIN = 1;
    private const uint SPLICE_F_MOVE = 1;
    private const uint SPLICE_F_NONBLOCK = 2;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    public static Task<(byte[] Bytes, bool Truncated)> ReadAsync(Stream stream, int limit, CancellationToken abort)
    {
        if (stream is not PipeStream pipe)
        {
            return ReadManagedAsync(stream, limit, abort);
        }

        return Task.Factory.StartNew(() => ReadNative(pipe, limit, abort), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private static (byte[] Bytes, bool Truncated) ReadNative(PipeStream pipe, int limit, CancellationToken abort)
    {
        var fd = (int)pipe.SafePipeHandle.DangerousGetHandle();
        // A bigger pipe means fewer wake-ups for a chatty child; failure just keeps the default size.
        _ = Fcntl(fd, F_SETPIPE_SZ, ChunkBytes);
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Write);
        var nullFd = (int)devNull.DangerousGetHandle();
        var kept = new MemoryStream();
        var truncated = false;
        var buffer = new byte[64 * 1024];
        var poll = new PollFd { Fd = fd, Events = POLLIN };
        while (!abort.IsCancellationRequested)
        {
            var ready = Poll(ref poll, 1, 100);
            if (ready < 0 && Marshal.GetLastPInvokeError() != EINTR)
            {
                break;
            }

            if (ready <= 0)
            {
                continue;
            }

            long read;
            if (kept.Length < limit)
            {
                var want = (int)Math.Min(buffer.Length, limit - kept.Length);
                read = Read(fd, buffer, want);
                if (read > 0)
                {
                    kept.Write(buffer, 0, (int)read);
                }
            }
            else
            {
                read = Splice(fd, IntPtr.Zero, nullFd, IntPtr.Zero, ChunkBytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (read < 0 && Marshal.GetLastPInvokeError() is not (EAGAIN or EINTR))
                {
                    // No splice support for this pipe: fall back to reading and dropping.
                    read = Read(fd, buffer, buffer.Length);
                }

                truncated |= read > 0;
            }

            if (read == 0)
            {
                break;
            }

            if (read < 0 && Marshal.GetLastPInvokeError() is not (EAGAIN or EINTR))
            {
                break;
            }
        }

        GC.KeepAlive(pipe);
        return (kept.ToArray(), truncated);
    }

    private static async Task<(byte[] Bytes, bool Truncated)> ReadManagedAsync(Stream stream, int limit, CancellationToken abort)
    {
        var kept = new MemoryStream();
        var truncated = false;
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer, abort);
                if (read == 0)
                {
                    break;
                }

                var room = (int)Math.Max(0, limit - kept.Length);
                if (room > 0)
                {
                    kept.Write(buffer, 0, Math.Min(room, read));
                }

                truncated |= read > room;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Aborted after the sandbox was torn down: what was read is the output.
        }

        return (kept.ToArray(), truncated);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern int Poll(ref PollFd fds, nuint count, int timeoutMs);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "splice", SetLastError = true)]
    private static extern nint Splice(int fdIn, IntPtr offIn, int fdOut, IntPtr offOut, nuint length, uint flags);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);
}
