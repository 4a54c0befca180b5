using Sandstorm.Core.Contracts;
using Sandstorm.Core.Validation;

namespace Sandstorm.Core.Tests;

public sealed class BareMetalValidationTests
{
    private static readonly RunRequest Valid = new() { Code = "print(1)", Language = "python" };

    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("registry.example/my-ai-os:v1.0")]
    [InlineData("registry.example/my-ai-os:v1.0@" + Digest)]
    public void Validate_BareMetalWithImage_IsValidAndReachesTheIntent(string image)
    {
        var request = Valid with { Deployment = Deployments.BareMetal, BootcImage = image };

        Assert.Empty(RunRequestValidator.Validate(request));
        Assert.Equal(image, RunIntent.Of(request).BootcImage);
    }

    [Theory]
    [InlineData("cloud", "registry.example/os:v1", "deployment")]
    [InlineData("bare-metal", null, "bootcImage")]
    [InlineData(null, "registry.example/os:v1", "bootcImage")]
    [InlineData("bare-metal", "registry.example/os:v1@sha256:ABC", "bootcImage")]
    [InlineData("bare-metal", "registry.example/os:v1@" + Digest + "0", "bootcImage")]
    [InlineData("bare-metal", "", "bootcImage")]
    [InlineData("bare-metal", "two words", "bootcImage")]
    public void Validate_BadBareMetal_NamesTheField(string? deployment, string? image, string field) =>
        Assert.Contains(field, RunRequestValidator.Validate(Valid with { Deployment = deployment, BootcImage = image }).Keys);

    [Fact]
    public void Intent_NotBareMetal_HasNoImage() => Assert.Null(RunIntent.Of(Valid).BootcImage);

    [Theory]
    [InlineData("", Digest, false)]
    [InlineData("os:v1", Digest, true)]
    [InlineData("os:v1", "sha256:abc", false)]
    [InlineData("os:v1@x", Digest, false)]
    public void BootImageProblem_ChecksNameAndDigest(string name, string digest, bool valid) =>
        Assert.Equal(valid, EdgeBootImage.Problem(new EdgeBootImage(name, digest)) is null);
}
