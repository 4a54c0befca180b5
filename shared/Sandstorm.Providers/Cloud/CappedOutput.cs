using System.Text;

namespace Sandstorm.Providers.Cloud;

/// <summary>
/// Assembles streamed output in arrival order up to a byte cap; what is beyond the cap is dropped and flagged.
/// Bytes are kept raw until the end so a UTF-8 sequence split across chunks decodes correctly.
/// </summary>
public sealed class CappedOutput
{
    private readonly int _limit;
    private readonly MemoryStream _buffer = new();

    public CappedOutput(int limitBytes)
    {
        _limit = Math.Max(0, limitBytes);
    }

    public bool Truncated { get; private set; }

    public long TotalBytes { get; private set; }

    public void Append(ReadOnlySpan<byte> chunk)
    {
        TotalBytes += chunk.Length;
        var room = _limit - (int)_buffer.Length;
        if (chunk.Length <= room)
        {
            _buffer.Write(chunk);
            return;
        }

        if (room > 0)
        {
            _buffer.Write(chunk[..room]);
        }

        Truncated = true;
    }

    public void Append(string text) => Append(Encoding.UTF8.GetBytes(text));

    /// <summary>The kept output; a multi-byte character cut by the cap is dropped rather than rendered as garbage.</summary>
    public string Text()
    {
        var bytes = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        if (Truncated)
        {
            bytes = TrimIncompleteTail(bytes);
        }

        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Caps a whole string at once (providers that return output in one piece).</summary>
    public static (string Text, bool Truncated) Cap(string? text, int limitBytes)
    {
        var output = new CappedOutput(limitBytes);
        output.Append(text ?? "");
        return (output.Text(), output.Truncated);
    }

    private static Span<byte> TrimIncompleteTail(Span<byte> bytes)
    {
        // Walk back over continuation bytes to the lead byte of the last character; drop it if incomplete.
        var i = bytes.Length - 1;
        var continuation = 0;
        while (i >= 0 && (bytes[i] & 0xC0) == 0x80 && continuation < 3)
        {
            i--;
            continuation++;
        }

        if (i < 0)
        {
            return bytes;
        }

        var lead = bytes[i];
        var needed = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
        return needed > continuation ? bytes[..i] : bytes;
    }
}
