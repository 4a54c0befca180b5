namespace Sandstorm.Security.Compliance;

/// <summary>What kind of evidence a control draws on.</summary>
public enum EvidenceKind
{
    /// <summary>The isolation each run actually got (runtime and level, from its signed provenance).</summary>
    Isolation,

    /// <summary>Sandboxes without network, and the egress rule's findings.</summary>
    Egress,

    /// <summary>Shield's runtime monitoring: coverage per run, findings by rule.</summary>
    Monitoring,

    /// <summary>Quarantines: what killed what, how fast, the outputs kept as evidence.</summary>
    Response,

    /// <summary>One signed record per run: who, what (by digest), where, when, how it ended.</summary>
    AuditTrail,

    /// <summary>The append-only Merkle log: inclusion of every record, consistency across the period, signed head.</summary>
    LogIntegrity,
}

/// <summary>A control of a standard, by its identifier, and the evidence that speaks to it.</summary>
public sealed record ControlDefinition(string Id, string Title, IReadOnlyList<EvidenceKind> Evidence, string? Gap = null);

/// <summary>The standards a compliance report can be built for, and the controls each report covers.</summary>
public static class ComplianceStandards
{
    public const string Soc2 = "soc2";
    public const string Hipaa = "hipaa";
    public const string PciDss = "pci-dss";

    /// <summary>The standards by their query name.</summary>
    public static IReadOnlyDictionary<string, (string Name, IReadOnlyList<ControlDefinition> Controls)> All { get; } =
        new Dictionary<string, (string, IReadOnlyList<ControlDefinition>)>(StringComparer.Ordinal)
        {
            [Soc2] = ("SOC 2 — AICPA Trust Services Criteria (2017, points of focus revised 2022), Common Criteria",
            [
                new("CC6.1", "Logical access security software, infrastructure and architectures protect information assets", [EvidenceKind.Isolation, EvidenceKind.AuditTrail],
                    "Access to the tenant's own systems, and the handling of its API keys, are the tenant's controls."),
                new("CC6.6", "Logical access security measures protect against threats from outside the system boundaries", [EvidenceKind.Egress]),
                new("CC6.8", "Unauthorized or malicious software is prevented or detected and acted upon", [EvidenceKind.Monitoring, EvidenceKind.Response]),
                new("CC7.2", "System components are monitored for anomalies indicative of malicious acts, and anomalies are analyzed", [EvidenceKind.Monitoring]),
                new("CC7.3", "Security events are evaluated to determine whether they are security incidents", [EvidenceKind.Monitoring, EvidenceKind.Response]),
                new("CC7.4", "Identified security incidents are responded to (contained, remediated, communicated)", [EvidenceKind.Response],
                    "Communication of incidents to the tenant's own stakeholders is the tenant's procedure."),
            ]),
            [Hipaa] = ("HIPAA Security Rule — 45 CFR Part 164, Subpart C",
            [
                new("§164.312(a)(1)", "Access control: only authorized persons or software programs access ePHI", [EvidenceKind.Isolation]),
                new("§164.312(b)", "Audit controls: mechanisms that record and examine activity in systems that contain or use ePHI", [EvidenceKind.AuditTrail, EvidenceKind.Monitoring, EvidenceKind.LogIntegrity]),
                new("§164.312(c)(1)", "Integrity: ePHI is protected from improper alteration or destruction", [EvidenceKind.LogIntegrity, EvidenceKind.Isolation]),
                new("§164.312(c)(2)", "Mechanism to authenticate ePHI: alteration or destruction can be corroborated", [EvidenceKind.LogIntegrity]),
                new("§164.308(a)(6)(ii)", "Security incident procedures — response and reporting", [EvidenceKind.Response],
                    "Reporting to the covered entity and documenting outcomes is the tenant's procedure; the findings and quarantines here are its input."),
            ]),
            [PciDss] = ("PCI DSS v4.0",
            [
                new("10.2.1", "Audit logs are enabled and active for all system components", [EvidenceKind.AuditTrail]),
                new("10.2.2", "Audit logs record the details of each auditable event (identity, type, time, outcome, origin, affected resource)", [EvidenceKind.AuditTrail]),
                new("10.3.4", "File integrity monitoring or change detection on audit logs: existing log data cannot be changed without alerting", [EvidenceKind.LogIntegrity]),
                new("10.4.1.1", "Automated mechanisms perform audit log reviews", [EvidenceKind.Monitoring]),
                new("11.5.1", "Intrusion-detection and/or intrusion-prevention techniques detect and/or prevent intrusions", [EvidenceKind.Monitoring, EvidenceKind.Response, EvidenceKind.Egress]),
                new("11.5.2", "A change-detection mechanism alerts on unauthorized modification of critical files", [EvidenceKind.Monitoring],
                    "Shield does not compare critical files against a baseline: it detects reads of credential files and escape and privilege attempts inside sandboxes (whose root file system is read-only). File-integrity monitoring of the tenant's own hosts is the tenant's."),
                new("12.10.5", "The incident response plan includes monitoring and responding to alerts from security monitoring systems", [EvidenceKind.Response]),
            ]),
        };
}
