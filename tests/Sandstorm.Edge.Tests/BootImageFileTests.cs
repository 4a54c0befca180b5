using Sandstorm.Edge.Agent;

namespace Sandstorm.Edge.Tests;

public sealed class BootImageFileTests : IDisposable
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private readonly string _dir = Directory.CreateTempSubdirectory("bootimage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string json)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void ReadFrom_FirstWellFormedFileWins()
    {
        var missing = Path.Combine(_dir, "missing.json");
        var malformed = Write("bad.json", """{"name":"os:v1","digest":"md5:00"}""");
        var notJson = Write("garbage.json", "not json");
        var good = Write("good.json", $$"""{"name":"registry.example/os:v1","digest":"{{Digest}}"}""");
        var later = Write("later.json", $$"""{"name":"registry.example/other:v1","digest":"{{Digest}}"}""");

        var image = BootImageFile.ReadFrom([missing, malformed, notJson, good, later]);

        Assert.Equal(new Sandstorm.Core.Contracts.EdgeBootImage("registry.example/os:v1", Digest), image);
    }

    [Fact]
    public void ReadFrom_NoFile_IsNull() => Assert.Null(BootImageFile.ReadFrom([Path.Combine(_dir, "none.json")]));
}
