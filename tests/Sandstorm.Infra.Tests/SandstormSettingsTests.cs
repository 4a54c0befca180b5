using System.Reflection;
using Sandstorm.Core.Configuration;

namespace Sandstorm.Infra.Tests;

public sealed class SandstormSettingsTests
{
    private static IReadOnlyList<string> DeclaredSettings =>
        typeof(SandstormSettings).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .Where(v => v.StartsWith(SandstormSettings.SectionName + "__", StringComparison.Ordinal))
            .ToList();

    [Fact]
    public void DeclaredSettings_EachIsRequiredOrLocalOnly()
    {
        Assert.NotEmpty(DeclaredSettings);
        foreach (var setting in DeclaredSettings)
        {
            Assert.True(
                SandstormSettings.Required.Contains(setting) ^ SandstormSettings.LocalOnly.Contains(setting),
                $"{setting} must be in exactly one of Required and LocalOnly");
        }
    }

    [Fact]
    public void Required_AreDeclaredUniqueAndInEnvironmentForm()
    {
        Assert.Equal(SandstormSettings.Required.Count, SandstormSettings.Required.Distinct(StringComparer.OrdinalIgnoreCase).Count());
        foreach (var setting in SandstormSettings.Required)
        {
            Assert.Contains(setting, DeclaredSettings);
            Assert.Matches("^Sandstorm(__[A-Z][A-Za-z0-9]*){2,}$", setting);
        }
    }

    [Fact]
    public void Secrets_AreRequired()
    {
        Assert.Subset(SandstormSettings.Required.ToHashSet(), SandstormSettings.Secrets.ToHashSet());
    }

    [Theory]
    [InlineData(SandstormSettings.KeyVaultUri, "Sandstorm:KeyVault:Uri")]
    [InlineData(SandstormSettings.E2BApiKey, "Sandstorm:Providers:E2B:ApiKey")]
    public void ConfigurationKey_MapsEnvironmentFormToConfigurationPath(string setting, string expected)
    {
        Assert.Equal(expected, SandstormSettings.ConfigurationKey(setting));
    }
}
