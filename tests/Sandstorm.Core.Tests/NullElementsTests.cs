using System.Text.Json;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;

namespace Sandstorm.Core.Tests;

public sealed class NullElementsTests
{
    [Theory]
    [InlineData("""{"name":"a","labels":{"k":null}}""", typeof(EdgeEnrollRequest), "labels.k")]
    [InlineData("""{"runtimes":[null]}""", typeof(EdgeHeartbeat), "runtimes[0]")]
    [InlineData("""{"code":"x","language":"python","files":{"a.txt":"1","b.txt":null}}""", typeof(RunRequest), "files.b.txt")]
    [InlineData("""{"code":"x","language":"python","requirements":["numpy",null]}""", typeof(RunRequest), "requirements[1]")]
    public void Reject_NullInsideAListOrMap_Throws400NamingTheField(string json, Type type, string field)
    {
        var value = JsonSerializer.Deserialize(json, type, SandstormJson.Strict)!;

        var e = Assert.Throws<SandstormException>(() => NullElements.Reject(value));

        Assert.Equal(400, e.Status);
        Assert.Equal(ErrorCodes.ValidationFailed, e.Code);
        Assert.Equal([field], e.Errors!.Keys);
    }

    [Fact]
    public void Reject_NoNullsAndNullOptionalFields_Passes()
    {
        var value = JsonSerializer.Deserialize<RunRequest>("""{"code":"x","language":"python","files":{"a":"1"},"requirements":["numpy"],"environment":null}""", SandstormJson.Strict)!;

        NullElements.Reject(value);
    }
}
