using System.Buffers.Binary;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The classic BPF program bwrap loads, run here on a small interpreter of the instructions libseccomp emits, for
/// calls a test inside a sandbox cannot make on every machine: the 32-bit entry (this VM faults on int 0x80 before any
/// filter runs) and the x32 ABI (its kernel has none). Also what the program answers for the rest of the policy, and
/// that the OCI form says the same.
/// </summary>
public sealed class SeccompFilterTests
{
    private const uint AuditArchX86_64 = 0xC000003E;
    private const uint AuditArchI386 = 0x40000003;
    private const uint Allow = 0x7FFF0000;
    private const uint ErrnoEperm = 0x00050001;
    private const uint ErrnoEnosys = 0x00050026;

    private static readonly Lazy<byte[]> Program = new(() =>
        File.ReadAllBytes(SeccompPolicy.BpfFileAsync(TestRuntimes.Options, CancellationToken.None).GetAwaiter().GetResult()));

    [Theory]
    [InlineData("read", AuditArchX86_64, 0, 0ul, Allow)]
    [InlineData("clone without namespace flags", AuditArchX86_64, 56, 0x003D0F00ul, Allow)]
    [InlineData("clone with CLONE_NEWUSER", AuditArchX86_64, 56, 0x10000011ul, ErrnoEnosys)]
    [InlineData("clone with CLONE_NEWNET in the high half", AuditArchX86_64, 56, 0x1_4000_0011ul, ErrnoEnosys)]
    [InlineData("personality query", AuditArchX86_64, 135, 0xFFFFFFFFul, Allow)]
    [InlineData("personality ADDR_NO_RANDOMIZE", AuditArchX86_64, 135, 0x0040000ul, ErrnoEnosys)]
    [InlineData("ptrace", AuditArchX86_64, 101, 0ul, ErrnoEperm)]
    [InlineData("modify_ldt", AuditArchX86_64, 154, 0ul, ErrnoEperm)]
    [InlineData("move_pages", AuditArchX86_64, 279, 0ul, ErrnoEperm)]
    [InlineData("io_uring_setup", AuditArchX86_64, 425, 0ul, ErrnoEperm)]
    [InlineData("clone3", AuditArchX86_64, 435, 0ul, ErrnoEnosys)]
    [InlineData("a call numbered after every known one", AuditArchX86_64, 999, 0ul, ErrnoEnosys)]
    [InlineData("x32 getpid", AuditArchX86_64, 0x40000027, 0ul, ErrnoEnosys)]
    [InlineData("x32 read", AuditArchX86_64, 0x40000000, 0ul, ErrnoEnosys)]
    [InlineData("int 0x80 getpid", AuditArchI386, 20, 0ul, ErrnoEnosys)]
    [InlineData("int 0x80 read", AuditArchI386, 3, 0ul, ErrnoEnosys)]
    public void BwrapFilter_Answers(string what, uint arch, int nr, ulong arg0, uint expected)
    {
        Assert.True(Run(Program.Value, nr, arch, arg0) == expected, $"{what}: got 0x{Run(Program.Value, nr, arch, arg0):X8}, expected 0x{expected:X8}");
    }

    [Fact]
    public void OciSection_IsAnAllowListThatRefusesWithAnErrno()
    {
        var section = SeccompPolicy.OciSection();

        Assert.Equal("SCMP_ACT_ERRNO", (string?)section["defaultAction"]);
        Assert.Equal(38, (int?)section["defaultErrnoRet"]);
        var allowed = section["syscalls"]!.AsArray().Where(r => (string?)r!["action"] == "SCMP_ACT_ALLOW" && r!["args"] is null)
            .SelectMany(r => r!["names"]!.AsArray().Select(n => (string)n!)).ToHashSet();
        Assert.Contains("read", allowed);
        Assert.DoesNotContain("modify_ldt", allowed);
        Assert.DoesNotContain("clone3", allowed);
        Assert.DoesNotContain("clone", allowed);
        Assert.Contains("clone3", SeccompPolicy.OciSection(refuseClone3: false)["syscalls"]!.AsArray()[0]!["names"]!.AsArray().Select(n => (string)n!));
        Assert.Empty(SeccompPolicy.Allowed.Intersect(SeccompPolicy.Denied));
        Assert.DoesNotContain(section["syscalls"]!.AsArray(), r => ((string?)r!["action"])!.Contains("KILL", StringComparison.Ordinal));
    }

    // A classic BPF interpreter for seccomp: data is struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }.
    private static uint Run(byte[] program, int nr, uint arch, ulong arg0)
    {
        var data = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(data, nr);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), arch);
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(16), arg0);
        uint a = 0, x = 0;
        var memory = new uint[16];
        for (var pc = 0; pc < program.Length / 8; pc++)
        {
            var code = BinaryPrimitives.ReadUInt16LittleEndian(program.AsSpan(pc * 8));
            var jt = program[(pc * 8) + 2];
            var jf = program[(pc * 8) + 3];
            var k = BinaryPrimitives.ReadUInt32LittleEndian(program.AsSpan((pc * 8) + 4));
            switch (code)
            {
                case 0x20: a = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)k)); break; // ld [k]
                case 0x00: a = k; break;                                                            // ld #k
                case 0x01: x = k; break;                                                            // ldx #k
                case 0x60: a = memory[k]; break;                                                    // ld M[k]
                case 0x61: x = memory[k]; break;                                                    // ldx M[k]
                case 0x02: memory[k] = a; break;                                                    // st M[k]
                case 0x03: memory[k] = x; break;                                                    // stx M[k]
                case 0x04: a += k; break;
                case 0x14: a -= k; break;
                case 0x54: a &= k; break;
                case 0x44: a |= k; break;
                case 0x07: x = a; break;                                                            // tax
                case 0x87: a = x; break;                                                            // txa
                case 0x05: pc += (int)k; break;                                                     // ja
                case 0x15: pc += a == k ? jt : jf; break;                                           // jeq #k
                case 0x25: pc += a > k ? jt : jf; break;                                            // jgt #k
                case 0x35: pc += a >= k ? jt : jf; break;                                           // jge #k
                case 0x45: pc += (a & k) != 0 ? jt : jf; break;                                     // jset #k
                case 0x1D: pc += a == x ? jt : jf; break;
                case 0x2D: pc += a > x ? jt : jf; break;
                case 0x3D: pc += a >= x ? jt : jf; break;
                case 0x4D: pc += (a & x) != 0 ? jt : jf; break;
                case 0x06: return k;                                                                // ret #k
                case 0x16: return a;                                                                // ret a
                default: throw new NotSupportedException($"BPF instruction 0x{code:X4} at {pc} is not interpreted here");
            }
        }

        throw new InvalidOperationException("the program ran off its end");
    }
}
