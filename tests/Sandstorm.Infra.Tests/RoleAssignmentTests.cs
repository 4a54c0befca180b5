using System.Text.RegularExpressions;

namespace Sandstorm.Infra.Tests;

/// <summary>The app identity holds the data-plane role it needs on every resource it touches, and nothing broader.</summary>
[Collection(InfraCollection.Name)]
public sealed partial class RoleAssignmentTests(InfraCompilation infra)
{
    // Built-in role definition ids are the same in every tenant.
    public static TheoryData<string, string, string> ExpectedAppRoles => new()
    {
        { "Microsoft.Storage/storageAccounts", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner" },
        { "Microsoft.Storage/storageAccounts", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor" },
        { "Microsoft.Storage/storageAccounts", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor" },
        { "Microsoft.KeyVault/vaults", "12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User" },
        { "Microsoft.KeyVault/vaults", "4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User" },
        { "Microsoft.ServiceBus/namespaces", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", "Azure Service Bus Data Sender" },
        { "Microsoft.ServiceBus/namespaces", "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "Azure Service Bus Data Receiver" },
        { "Microsoft.Insights/components", "3913510d-42f4-4e42-8a64-420c390055eb", "Monitoring Metrics Publisher" },
        { "Microsoft.App/sessionPools", "0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0", "Azure ContainerApps Session Executor" },
    };

    private static readonly HashSet<string> BroadRoles =
    [
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", // Owner
        "b24988ac-6180-42a0-ab88-20f7382dd24c", // Contributor
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", // User Access Administrator
        "00482a5a-887f-4fb3-b363-3b7fe8e74483", // Key Vault Administrator
        "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", // Key Vault Crypto Officer
    ];

    private IReadOnlyList<Assignment> Assignments =>
        infra.Template.OfType("Microsoft.Authorization/roleAssignments").Select(Assignment.From).ToList();

    [Theory]
    [MemberData(nameof(ExpectedAppRoles))]
    public void AppIdentity_HasRoleOnResource(string scopeType, string roleId, string roleName)
    {
        var matches = Assignments.Where(a => a.ScopeType == scopeType && a.RoleId == roleId && a.IsForAppIdentity).ToList();
        Assert.True(matches.Count == 1, $"{roleName} on {scopeType}: found {matches.Count}");
        var assignment = matches[0];
        Assert.Equal("ServicePrincipal", assignment.PrincipalType);
        Assert.Null(assignment.Condition);
    }

    [Fact]
    public void RoleAssignments_AreNamedGuidOfScopePrincipalRole()
    {
        Assert.NotEmpty(Assignments);
        foreach (var assignment in Assignments)
        {
            // guid(<scope resource id>, <principal id>, <role id>) with the same three values the assignment uses.
            Assert.Equal(
                $"[guid({assignment.ScopeExpression}, {assignment.PrincipalExpression}, {assignment.RoleExpression})]",
                assignment.Name);
        }
    }

    [Fact]
    public void RoleAssignments_NoBroadRoles()
    {
        Assert.DoesNotContain(Assignments, a => BroadRoles.Contains(a.RoleId));
        Assert.DoesNotContain(Assignments, a => a.ScopeType is null);
    }

    [Fact]
    public void RoleAssignments_GoToTheDeployedIdentity()
    {
        var roles = Assert.Single(infra.Template.OfType("Microsoft.Resources/deployments"), m => m.Node["properties"]!["template"]!.ToJsonString().Contains("Microsoft.Authorization/roleAssignments", StringComparison.Ordinal));
        var principal = roles.ModuleParameter("principalId")!.GetValue<string>();
        Assert.Equal("[reference('identity').outputs.principalId.value]", principal);
    }

    private sealed partial record Assignment(
        string Name, string ScopeExpression, string? ScopeType, string RoleId, string RoleExpression, string PrincipalExpression, string? PrincipalType, string? Condition)
    {
        public bool IsForAppIdentity => PrincipalExpression == "parameters('principalId')";

        public static Assignment From(ArmResource resource)
        {
            var scope = Unwrap(resource.Node["scope"]?.GetValue<string>() ?? "");
            var scopeMatch = ScopePattern().Match(scope);
            var roleDefinition = resource.Property("roleDefinitionId")!.GetValue<string>();
            var roleMatch = RolePattern().Match(roleDefinition);
            Assert.True(roleMatch.Success, $"unexpected roleDefinitionId {roleDefinition}");
            var roleExpression = roleMatch.Groups["expr"].Value;
            return new Assignment(
                resource.Name,
                scope,
                scopeMatch.Success ? scopeMatch.Groups["type"].Value : null,
                ResolveRoleId(resource, roleExpression),
                roleExpression,
                Unwrap(resource.Property("principalId")!.GetValue<string>()),
                resource.Property("principalType")?.GetValue<string>(),
                resource.Property("condition")?.GetValue<string>());
        }

        // A role id is written as a literal GUID or as a member of a variable object (variables('roleIds').name).
        private static string ResolveRoleId(ArmResource resource, string expression)
        {
            var literal = GuidPattern().Match(expression);
            if (literal.Success)
            {
                return literal.Value;
            }
            var member = VariableMemberPattern().Match(expression);
            Assert.True(member.Success, $"cannot resolve role id {expression}");
            return resource.Variable(member.Groups["var"].Value)![member.Groups["member"].Value]!.GetValue<string>();
        }

        private static string Unwrap(string expression) =>
            expression.StartsWith('[') && expression.EndsWith(']') ? expression[1..^1] : expression;

        [GeneratedRegex(@"^resourceId\('(?<type>Microsoft\.[A-Za-z]+/[A-Za-z]+)', ")]
        private static partial Regex ScopePattern();

        [GeneratedRegex(@"^\[subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', (?<expr>.+)\)\]$")]
        private static partial Regex RolePattern();

        [GeneratedRegex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")]
        private static partial Regex GuidPattern();

        [GeneratedRegex(@"^variables\('(?<var>\w+)'\)\.(?<member>\w+)$")]
        private static partial Regex VariableMemberPattern();
    }
}
