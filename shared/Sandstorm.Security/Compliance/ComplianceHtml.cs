using System.Globalization;
using System.Net;
using System.Text;

namespace Sandstorm.Security.Compliance;

/// <summary>A readable page of a compliance report: controls and their evidence, the log evidence, the runs. The signed JSON is the evidence; this is its view.</summary>
public static class ComplianceHtml
{
    public static string Render(ComplianceReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var html = new StringBuilder();
        void Line(string text) => html.Append(text).Append('\n');
        static string E(string? text) => WebUtility.HtmlEncode(text ?? "");
        static string T(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);

        Line("<!DOCTYPE html>");
        Line("<html lang=\"en\"><head><meta charset=\"utf-8\">");
        Line($"<title>{E(report.StandardName)} — evidence for {E(report.TenantId)}</title>");
        Line("<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#111}"
            + "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}"
            + "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}"
            + "th{background:#f4f4f4}.id{font-weight:600;white-space:nowrap}.gap{color:#8a4b00}.q{color:#a00;font-weight:600}code{font-size:.9em;word-break:break-all}</style>");
        Line("</head><body>");
        Line($"<h1>{E(report.StandardName)}</h1>");
        Line($"<p>Tenant <code>{E(report.TenantId)}</code> · period {T(report.From)} – {T(report.To)} · generated {T(report.GeneratedAt)}</p>");
        Line("<p>This page shows a signed report: the JSON form (<code>GET /v1/compliance/reports</code> without <code>format=html</code>) is a DSSE envelope that <code>sandstorm verify</code> checks offline — every run's signed provenance, its inclusion in the transparency log, and the log's consistency across the period.</p>");

        var s = report.Summary;
        Line("<h2>Summary</h2><table>");
        Line($"<tr><th>Runs</th><td>{s.Runs}</td></tr>");
        Line($"<tr><th>Isolation applied</th><td>{E(string.Join(", ", s.Isolation.Select(p => $"{p.Key} ×{p.Value}")))}</td></tr>");
        Line($"<tr><th>Provider / runtime</th><td>{E(string.Join(", ", s.Runtimes.Select(p => $"{p.Key} ×{p.Value}")))}</td></tr>");
        Line($"<tr><th>Shield runs (with real coverage)</th><td>{s.ShieldRuns} ({s.ShieldRunsCovered})</td></tr>");
        Line($"<tr><th>Findings · quarantines</th><td>{s.Findings} · {s.Quarantined}</td></tr>");
        Line($"<tr><th>Runs without provenance</th><td>{report.UnattestedRuns.Count}</td></tr>");
        Line("</table>");

        Line("<h2>Controls</h2><table><tr><th>Control</th><th>Evidence</th><th>Not covered</th></tr>");
        foreach (var control in report.Controls)
        {
            Line($"<tr><td class=\"id\">{E(control.Id)}<br><small>{E(control.Title)}</small></td>"
                + $"<td><ul>{string.Concat(control.Evidence.Select(e => $"<li>{E(e)}</li>"))}</ul>"
                + (control.LogIndices.Count > 0 ? $"<small>log entries: {E(Shorten(control.LogIndices))}</small>" : "")
                + $"</td><td class=\"gap\"><ul>{string.Concat(control.Gaps.Select(g => $"<li>{E(g)}</li>"))}</ul></td></tr>");
        }

        Line("</table>");

        var log = report.Log;
        Line("<h2>Transparency log</h2><table>");
        Line($"<tr><th>Log</th><td><code>{E(log.LogName)}</code></td></tr>");
        Line($"<tr><th>Before the period</th><td>size {log.StartSize}, root <code>{E(log.StartRootHash)}</code></td></tr>");
        Line($"<tr><th>Signed tree head</th><td>size {log.EndTreeHead.TreeSize}, root <code>{E(log.EndTreeHead.RootHash)}</code>, {T(log.EndTreeHead.Timestamp)}, key <code>{E(log.EndTreeHead.KeyId)}</code></td></tr>");
        Line($"<tr><th>Consistency proof</th><td>{log.Consistency.Hashes.Count} hash(es) from size {log.Consistency.FromSize} to {log.Consistency.ToSize}</td></tr>");
        Line($"<tr><th>Signing keys</th><td>{string.Join("<br>", report.Keys.Select(k => $"<code>{E(k.KeyId)}</code>"))}</td></tr>");
        Line("</table>");

        Line("<h2>Runs</h2><table><tr><th>Log index</th><th>Run</th><th>Completed</th><th>Where</th><th>Isolation</th><th>Shield</th><th>Findings</th></tr>");
        foreach (var run in report.Runs)
        {
            var findings = string.Join("<br>", run.Findings.Select(f =>
                $"{(f.Quarantined ? "<span class=\"q\">quarantined</span> " : "")}{E(f.Rule)} ({E(f.Priority)}) at {T(f.EventTime)}"
                + (f.QuarantineLatencyMs is { } ms ? $", killed in {ms.ToString("0.#", CultureInfo.InvariantCulture)} ms" : "")));
            Line($"<tr><td>{run.LogIndex}</td><td><code>{E(run.RunId)}</code></td><td>{T(run.CompletedAt)}</td><td>{E(run.Provider)}/{E(run.Runtime)}</td>"
                + $"<td>{E(run.IsolationLevel.ToString().ToLowerInvariant())}</td>"
                + $"<td>{E(run.SecurityTier.ToString().ToLowerInvariant())}{(run.ShieldCoverage is { } c ? ", coverage " + E(c.ToString().ToLowerInvariant()) : "")}</td>"
                + $"<td>{findings}</td></tr>");
        }

        Line("</table>");
        if (report.StoredFindings.Count > 0)
        {
            Line("<h2>Findings store</h2><table><tr><th>Event</th><th>Rule</th><th>Detector</th><th>Run</th><th>Action</th></tr>");
            foreach (var f in report.StoredFindings)
            {
                Line($"<tr><td>{T(f.Finding.EventTime)}</td><td>{E(f.Finding.Rule)} ({E(f.Finding.Priority)})</td><td>{E(f.Finding.Detector)}</td><td><code>{E(f.RunId)}</code></td><td>{E(f.Action)}</td></tr>");
            }

            Line("</table>");
        }

        Line("</body></html>");
        return html.ToString();
    }

    private static string Shorten(IReadOnlyList<long> indices) =>
        indices.Count <= 20 ? string.Join(", ", indices) : string.Join(", ", indices.Take(20)) + $" … ({indices.Count} in all)";
}
