using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;

namespace Sandstorm.Core.Tests;

public sealed class RunRequestValidatorTests
{
    private static readonly RunRequest Valid = new() { Code = "print(1)", Language = "python" };

    [Fact]
    public void Validate_MinimalRequest_IsValid() => Assert.Empty(RunRequestValidator.Validate(Valid));

    [Theory]
    [InlineData("python")]
    [InlineData("javascript")]
    [InlineData("typescript")]
    [InlineData("bash")]
    [InlineData("shell")]
    public void Validate_AllowedLanguage_IsValid(string language) =>
        Assert.Empty(RunRequestValidator.Validate(Valid with { Language = language }));

    [Theory]
    [InlineData("cobol")]
    [InlineData("")]
    [InlineData("Python")]
    public void Validate_UnknownLanguage_NamesTheField(string language) =>
        Assert.Contains("language", RunRequestValidator.Validate(Valid with { Language = language }).Keys);

    [Fact]
    public void Validate_CodeOverOneMiB_IsRefused()
    {
        var errors = RunRequestValidator.Validate(Valid with { Code = new string('x', (1024 * 1024) + 1) });
        Assert.Contains("1 MiB", errors["code"][0]);
    }

    [Fact]
    public void Validate_CodeOfExactlyOneMiB_IsValid() =>
        Assert.Empty(RunRequestValidator.Validate(Valid with { Code = new string('x', 1024 * 1024) }));

    [Fact]
    public void Validate_FilesOverTenMiBInTotal_AreRefused()
    {
        var files = new Dictionary<string, string> { ["a.txt"] = new('a', 6 * 1024 * 1024), ["b.txt"] = new('b', 5 * 1024 * 1024) };
        Assert.Contains("10 MiB", RunRequestValidator.Validate(Valid with { Files = files })["files"][0]);
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("/abs")]
    [InlineData("a/../../b")]
    [InlineData("")]
    public void Validate_UnsafeFilePath_IsRefused(string path) =>
        Assert.Contains("files", RunRequestValidator.Validate(Valid with { Files = new Dictionary<string, string> { [path] = "x" } }).Keys);

    [Theory]
    [InlineData("new\nline.txt", "control characters")]
    [InlineData("tab\t.txt", "control characters")]
    [InlineData("del\u007F.txt", "control characters")]
    [InlineData("\u202Etxt.exe", "bidirectional")]
    [InlineData("a/\u2066b", "bidirectional")]
    public void Validate_FileNameWithInvisibleOrSpoofingCharacters_IsRefused(string path, string reason)
    {
        var errors = RunRequestValidator.Validate(Valid with { Files = new Dictionary<string, string> { [path] = "x" } });
        Assert.Contains(reason, errors["files"][0], StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_FullwidthSolidusInAName_IsJustACharacter() =>
        Assert.Empty(RunRequestValidator.Validate(Valid with { Files = new Dictionary<string, string> { ["a\uFF0Fb"] = "x" } }));

    [Fact]
    public void Validate_FileNamePartOver255Bytes_IsRefused()
    {
        // 128 characters of two bytes each: within 255 characters, over the 255 bytes a file system allows per name.
        var errors = RunRequestValidator.Validate(Valid with { Files = new Dictionary<string, string> { [new string('\u00E9', 128)] = "x" } });
        Assert.Contains("255 bytes", errors["files"][0], StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AFileThatIsAlsoADirectoryOfAnother_IsRefused()
    {
        var errors = RunRequestValidator.Validate(Valid with { Files = new Dictionary<string, string> { ["a"] = "x", ["a/b/c"] = "y" } });
        Assert.Contains("'a' is both a file and a directory of 'a/b/c'", errors["files"][0], StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AThousandAndOneFiles_AreRefused()
    {
        var files = Enumerable.Range(0, 1001).ToDictionary(i => $"f{i}", _ => "");
        Assert.Contains("at most 1000 files", RunRequestValidator.Validate(Valid with { Files = files })["files"][0], StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EnvironmentValueWithANul_IsRefused()
    {
        var errors = RunRequestValidator.Validate(Valid with { Environment = new Dictionary<string, string> { ["A"] = "x\0--bind / /host" } });
        Assert.Contains("NUL", errors["environment"][0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(999)]
    [InlineData(900_001)]
    [InlineData(-5)]
    public void Validate_TimeoutOutOfRange_IsRefused(int timeout) =>
        Assert.Contains("timeout", RunRequestValidator.Validate(Valid with { Timeout = timeout }).Keys);

    [Theory]
    [InlineData(63)]
    [InlineData(16 * 1024 + 1)]
    public void Validate_MemoryOutOfRange_IsRefused(int memory) =>
        Assert.Contains("memory", RunRequestValidator.Validate(Valid with { Memory = memory }).Keys);

    [Theory]
    [InlineData(0.09)]
    [InlineData(16.5)]
    [InlineData(double.NaN)]
    public void Validate_CpuOutOfRange_IsRefused(double cpu) =>
        Assert.Contains("cpu", RunRequestValidator.Validate(Valid with { Cpu = cpu }).Keys);

    [Fact]
    public void Validate_NegativeMaxCost_IsRefused() =>
        Assert.Contains("constraints.maxCost", RunRequestValidator.Validate(Valid with { Constraints = new RunConstraints { MaxCost = -1 } }).Keys);

    [Theory]
    [InlineData(-1.0, "eu-west", "constraints.preferredRegionWeight")]
    [InlineData(101.0, "eu-west", "constraints.preferredRegionWeight")]
    [InlineData(1.0, null, "constraints.preferredRegionWeight")]
    public void Validate_BadPreferredRegionWeight_IsRefused(double weight, string? region, string field) =>
        Assert.Contains(field, RunRequestValidator.Validate(Valid with { Constraints = new RunConstraints { PreferredRegion = region, PreferredRegionWeight = weight } }).Keys);

    [Fact]
    public void Validate_RegionCarbonAndCarbonStrategy_AreAccepted() =>
        Assert.Empty(RunRequestValidator.Validate(Valid with
        {
            Strategy = RoutingStrategy.OptimizeCarbon,
            Constraints = new RunConstraints { PreferredRegion = "eu-west", PreferredRegionWeight = 2, AllowedRegions = ["eu", "us-east"], MaxCarbon = 0.5 },
        }));

    [Fact]
    public void Validate_EmptyAllowedRegionsOrZeroMaxCarbon_AreRefused()
    {
        var errors = RunRequestValidator.Validate(Valid with { Constraints = new RunConstraints { AllowedRegions = [], MaxCarbon = 0 } });

        Assert.Contains("constraints.allowedRegions", errors.Keys);
        Assert.Contains("constraints.maxCarbon", errors.Keys);
    }

    [Fact]
    public void Json_OptimizeCarbonAndNewConstraints_RoundTrip()
    {
        var json = """{"code":"print(1)","language":"python","strategy":"optimize_carbon","constraints":{"allowedRegions":["eu"],"preferredRegion":"eu-west","preferredRegionWeight":1.5,"maxCarbon":0.25}}""";
        var r = JsonSerializer.Deserialize<RunRequest>(json, SandstormJson.Options)!;

        Assert.Equal(RoutingStrategy.OptimizeCarbon, r.Strategy);
        Assert.Equal(["eu"], r.Constraints!.AllowedRegions);
        Assert.Equal(1.5, r.Constraints.PreferredRegionWeight);
        Assert.Equal(0.25, r.Constraints.MaxCarbon);
        Assert.Contains("\"strategy\":\"optimize_carbon\"", JsonSerializer.Serialize(r, SandstormJson.Options), StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_BadEnvironmentName_IsRefused() =>
        Assert.Contains("environment", RunRequestValidator.Validate(Valid with { Environment = new Dictionary<string, string> { ["1BAD"] = "x" } }).Keys);

    [Fact]
    public void ThrowIfInvalid_Invalid_ThrowsValidationFailedWithEveryField()
    {
        var e = Assert.Throws<SandstormException>(() => RunRequestValidator.ThrowIfInvalid(Valid with { Language = "cobol", Memory = 1 }));
        Assert.Equal(ErrorCodes.ValidationFailed, e.Code);
        Assert.Equal(400, e.Status);
        Assert.Equal(["language", "memory"], e.Errors!.Keys.Order());
    }

    [Fact]
    public void Json_RoundTrip_UsesSnakeCaseEnumsAndDefaults()
    {
        var request = JsonSerializer.Deserialize<RunRequest>(
            """{"code":"x","language":"python","isolationLevel":"strong","strategy":"optimize_cost","securityTier":"shield"}""",
            SandstormJson.Options)!;
        Assert.Equal(IsolationLevel.Strong, request.IsolationLevel);
        Assert.Equal(RoutingStrategy.OptimizeCost, request.Strategy);
        Assert.Equal(SecurityTier.Shield, request.SecurityTier);
        Assert.Equal(30_000, request.Timeout);
        Assert.Contains("\"optimize_cost\"", JsonSerializer.Serialize(request, SandstormJson.Options));
    }

    [Theory]
    [InlineData("""{"code":5,"language":"python"}""")]
    [InlineData("""{"code":"x","language":"python","isolationLevel":"extreme"}""")]
    [InlineData("""{"code":"x","language":"python","isolationLevel":2}""")]
    [InlineData("""{"code":"x","language":"python","memory":"lots"}""")]
    public void Json_WrongTypes_AreRejected(string json) =>
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<RunRequest>(json, SandstormJson.Options));

    [Fact]
    public void Normalize_Shell_IsBash() =>
        Assert.Equal(Languages.Bash, RunRequestValidator.Normalize(Valid with { Code = "echo hi", Language = "shell" }).Language);

    [Theory]
    [InlineData("your_ai_code.py", "python")]
    [InlineData("app.js", "javascript")]
    [InlineData("app.mjs", "javascript")]
    [InlineData("main-2.ts", "typescript")]
    [InlineData("setup.sh", "bash")]
    public void Normalize_CodeNamesAFileInFiles_RunsItInTheLanguageOfItsExtension(string file, string language)
    {
        var request = new RunRequest { Code = file, Files = new Dictionary<string, string> { [file] = "program" } };

        var canonical = RunRequestValidator.Normalize(request);

        Assert.Equal(language, canonical.Language);
        Assert.Equal(file, Languages.EntryPoint(canonical.Code, canonical.Files));
    }

    [Fact]
    public void Normalize_CodeNamesAFileThatIsNotInFiles_NamesCodeAndTheFile()
    {
        var e = Assert.Throws<SandstormException>(() => RunRequestValidator.Normalize(new RunRequest { Code = "your_ai_code.py", Files = new Dictionary<string, string> { ["other.py"] = "x" } }));

        Assert.Equal(400, e.Status);
        Assert.Contains("your_ai_code.py", Assert.Single(e.Errors!["code"]), StringComparison.Ordinal);
        Assert.DoesNotContain("language", e.Errors.Keys);
    }

    [Fact]
    public void Normalize_LanguageDisagreesWithTheFilesExtension_NamesLanguage()
    {
        var errors = RunRequestValidator.Validate(new RunRequest { Code = "main.ts", Language = "python", Files = new Dictionary<string, string> { ["main.ts"] = "x" } });

        Assert.Equal(["language"], errors.Keys);
    }

    [Theory]
    [InlineData("print('your_ai_code.py')")]
    [InlineData("data.csv")]
    [InlineData("dir/main.py")]
    [InlineData(".py")]
    public void Normalize_CodeThatIsNoBareFileNameWithoutLanguage_NamesLanguage(string code)
    {
        var errors = RunRequestValidator.Validate(new RunRequest { Code = code, Files = new Dictionary<string, string> { [code] = "x" } });

        Assert.Contains("language is required", Assert.Single(errors["language"]), StringComparison.Ordinal);
    }

    [Fact]
    public void Normalize_ConstraintsResources_BecomeTheRequestsOwn()
    {
        var canonical = RunRequestValidator.Normalize(Valid with { Constraints = new RunConstraints { Cpu = 2, Memory = 1024, Timeout = 60_000, MaxCost = 0.05m } });

        Assert.Equal((2.0, 1024, 60_000), (canonical.Cpu, canonical.Memory, canonical.Timeout));
        Assert.Equal(0.05m, canonical.Constraints!.MaxCost);
        Assert.Null(canonical.Constraints.Cpu);
        Assert.Null(canonical.Constraints.Memory);
        Assert.Null(canonical.Constraints.Timeout);
    }

    [Fact]
    public void Normalize_ResourceGivenTwiceWithTheSameValue_IsAccepted() =>
        Assert.Equal(2.0, RunRequestValidator.Normalize(Valid with { Cpu = 2, Constraints = new RunConstraints { Cpu = 2 } }).Cpu);

    [Fact]
    public void Normalize_ResourceGivenTwiceWithDifferentValues_NamesTheConstraint()
    {
        // Explicitly the default value at the top: still given, still a conflict.
        var errors = RunRequestValidator.Validate(Valid with { Cpu = 1, Memory = 512, Timeout = 30_000, Constraints = new RunConstraints { Cpu = 2, Memory = 1024, Timeout = 5_000 } });

        Assert.Equal(["constraints.cpu", "constraints.memory", "constraints.timeout"], errors.Keys.Order());
    }

    [Fact]
    public void Normalize_AliasedResourceOutOfRange_NamesTheAlias() =>
        Assert.Equal(["constraints.memory"], RunRequestValidator.Validate(Valid with { Constraints = new RunConstraints { Memory = 1 } }).Keys);

    [Theory]
    [InlineData(null, IsolationLevel.Maximum, IsolationLevel.Maximum)]
    [InlineData(null, IsolationLevel.None, IsolationLevel.None)]
    [InlineData(IsolationLevel.Standard, IsolationLevel.Maximum, IsolationLevel.Maximum)]
    [InlineData(IsolationLevel.Strong, IsolationLevel.Standard, IsolationLevel.Strong)]
    [InlineData(IsolationLevel.Strong, IsolationLevel.None, IsolationLevel.Strong)]
    [InlineData(IsolationLevel.None, IsolationLevel.Strong, IsolationLevel.Strong)]
    public void Normalize_ConstraintsIsolation_TheStrongerOfTheTwoApplies(IsolationLevel? top, IsolationLevel alias, IsolationLevel expected)
    {
        var request = Valid with { Constraints = new RunConstraints { Isolation = alias } };
        if (top is { } level)
        {
            request = request with { IsolationLevel = level };
        }

        var canonical = RunRequestValidator.Normalize(request);

        Assert.Equal(expected, canonical.IsolationLevel);
        Assert.Null(canonical.Constraints!.Isolation);
    }

    [Fact]
    public void Normalize_Requirements_BecomeARequirementsFile()
    {
        var canonical = RunRequestValidator.Normalize(Valid with { Requirements = ["numpy", " pandas==2.2 "] });

        Assert.Null(canonical.Requirements);
        Assert.Equal("numpy\npandas==2.2\n", canonical.Files![RunRequestValidator.RequirementsFile]);
        Assert.Equal(2, RunIntent.Of(canonical).Requirements);
    }

    [Theory]
    [InlineData("javascript", "numpy", false)]
    [InlineData("python", "--index-url=http://x", false)]
    [InlineData("python", "a\nb", false)]
    [InlineData("python", "numpy", true)]
    public void Normalize_BadRequirements_NameTheField(string language, string requirement, bool alsoAFile)
    {
        var files = alsoAFile ? new Dictionary<string, string> { ["requirements.txt"] = "six\n" } : null;
        var code = language == "python" ? "print(1)" : "console.log(1)";

        Assert.Equal(["requirements"], RunRequestValidator.Validate(new RunRequest { Code = code, Language = language, Requirements = [requirement], Files = files }).Keys);
    }

    [Fact]
    public void RequirementsOf_ARequirementsFileOfAnotherLanguage_IsOnlyAFile() =>
        Assert.Equal(0, RunIntent.Of(new RunRequest { Code = "x", Language = "javascript", Files = new Dictionary<string, string> { ["requirements.txt"] = "numpy\n" } }).Requirements);

    [Theory]
    [InlineData("""{"gpu":true}""")]
    [InlineData("""{"gpuType":"a100"}""")]
    [InlineData("""{"constraints":{"gpu":true}}""")]
    [InlineData("""{"constraints":{"requireGpu":true}}""")]
    public void Normalize_AnyWayOfAskingForAGpu_IsOneGpuFlag(string fields)
    {
        var json = """{"code":"print(1)","language":"python",""" + fields[1..];
        var canonical = RunRequestValidator.Normalize(JsonSerializer.Deserialize<RunRequest>(json, SandstormJson.Strict));

        Assert.True(canonical.Gpu);
        Assert.True(RunIntent.Of(canonical).Gpu);
    }

    [Fact]
    public void Normalize_Canonical_IsAFixedPointThatSurvivesJson()
    {
        var json = """{"code":"app.ts","files":{"app.ts":"console.log(1)"},"requirements":null,"constraints":{"cpu":2,"timeout":5000,"isolation":"strong","maxCost":0.05}}""";
        var canonical = RunRequestValidator.Normalize(JsonSerializer.Deserialize<RunRequest>(json, SandstormJson.Strict));

        var stored = JsonSerializer.Deserialize<RunRequest>(JsonSerializer.Serialize(canonical, SandstormJson.Options), SandstormJson.Strict)!;
        var again = RunRequestValidator.Normalize(stored);

        Assert.Equal(JsonSerializer.Serialize(canonical, SandstormJson.Options), JsonSerializer.Serialize(again, SandstormJson.Options));
        Assert.Equal((Languages.TypeScript, 2.0, 5000, IsolationLevel.Strong), (again.Language, again.Cpu, again.Timeout, again.IsolationLevel));
    }

    [Fact]
    public void Json_PresenceFlags_AreNotFieldsOnTheWire() =>
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<RunRequest>("""{"code":"x","language":"python","hasCpu":true}""", SandstormJson.Strict));
}
