using System.Text;

namespace Sandstorm.Runtimes.Shield;

/// <summary>
/// Just enough of the protobuf wire format to read gVisor's trace points: varints, length-delimited fields, fixed
/// 32/64-bit fields skipped. Input comes from the sandbox's sentry, which gVisor's threat model does not trust: every
/// length is checked against the buffer, nothing is allocated beyond it.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> data = data;
    private int position;

    public bool Next(out int field, out int wireType)
    {
        field = 0;
        wireType = 0;
        if (position >= data.Length)
        {
            return false;
        }

        var tag = ReadVarint();
        field = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        return field > 0;
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= data.Length)
            {
                throw new FormatException("truncated varint");
            }

            var b = data[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new FormatException("varint too long");
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        var length = ReadVarint();
        if (length > (ulong)(data.Length - position))
        {
            throw new FormatException("length-delimited field runs past the message");
        }

        var bytes = data.Slice(position, (int)length);
        position += (int)length;
        return bytes;
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadBytes());

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: Advance(8); break;
            case 2: ReadBytes(); break;
            case 5: Advance(4); break;
            default: throw new FormatException($"unsupported wire type {wireType}");
        }
    }

    private void Advance(int count)
    {
        if (count > data.Length - position)
        {
            throw new FormatException("fixed field runs past the message");
        }

        position += count;
    }
}
