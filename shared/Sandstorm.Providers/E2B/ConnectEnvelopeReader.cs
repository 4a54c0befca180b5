using System.Buffers.Binary;

namespace Sandstorm.Providers.E2B;

/// <summary>
/// Reads Connect protocol envelopes from a streaming response: 1 flag byte, 4-byte big-endian length, payload.
/// Flag 0x02 marks the end-of-stream envelope (JSON: <c>{}</c> or <c>{"error": ...}</c>).
/// </summary>
internal sealed class ConnectEnvelopeReader
{
    public const byte EndStreamFlag = 0x02;
    public const byte CompressedFlag = 0x01;

    /// <summary>Envelopes above this are refused: envd sends small chunks, so a huge length means a corrupt stream.</summary>
    private const int MaxEnvelopeBytes = 16 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly byte[] _header = new byte[5];

    public ConnectEnvelopeReader(Stream stream)
    {
        _stream = stream;
    }

    /// <summary>The next envelope, or null at a clean end of the byte stream. Throws <see cref="EndOfStreamException"/> mid-envelope.</summary>
    public async Task<(byte Flags, byte[] Payload)?> ReadAsync(CancellationToken cancellationToken)
    {
        var first = await _stream.ReadAsync(_header.AsMemory(0, 1), cancellationToken);
        if (first == 0)
        {
            return null;
        }

        await _stream.ReadExactlyAsync(_header.AsMemory(1, 4), cancellationToken);
        var length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(1, 4));
        if (length > MaxEnvelopeBytes)
        {
            throw new InvalidDataException($"Connect envelope of {length} bytes exceeds the limit");
        }

        var payload = new byte[length];
        await _stream.ReadExactlyAsync(payload, cancellationToken);
        return (_header[0], payload);
    }

    /// <summary>Frames one message as a Connect envelope (requests to streaming procedures are enveloped too).</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload, byte flags = 0)
    {
        var framed = new byte[5 + payload.Length];
        framed[0] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1, 4), (uint)payload.Length);
        payload.CopyTo(framed.AsSpan(5));
        return framed;
    }
}
