using System.Text;

namespace Sandstorm.BootKit;

/// <summary>
/// The files that put the Sandstorm edge agent into an image: an unprivileged system user, a first-boot enrolment
/// service fed by material passed at boot (never baked in), the agent service, and the image's own program as a
/// service. Paths are the ones inside the image.
/// </summary>
public static class AgentUnits
{
    public const string AgentUser = "sandstorm-edge";
    public const string AgentBinary = "/usr/bin/sandstorm-edge";
    public const string LibDir = "/usr/lib/sandstorm";
    public const string EnrollScript = LibDir + "/sandstorm-edge-enroll";
    public const string DigestScript = LibDir + "/bootkit-image-digest";
    public const string StateDir = "/var/lib/sandstorm-edge";
    public const string ConfigPath = StateDir + "/agent.json";
    public const string AgentService = "sandstorm-edge.service";
    public const string EnrollService = "sandstorm-edge-enroll.service";
    public const string AppService = "bootkit-app.service";

    /// <summary>Where the image says which image it is (name and digest); the agent reports it in its heartbeat.</summary>
    public const string ImageFile = LibDir + "/bootkit-image.json";

    /// <summary>Where a bootc host writes its booted image (name and digest), read before <see cref="ImageFile"/>.</summary>
    public const string RuntimeImageFile = "/run/sandstorm/bootkit-image.json";

    /// <summary>systemd credential names the enrolment reads (passed with SMBIOS type 11, <c>systemd.set_credential</c> or a container manager).</summary>
    public const string TokenCredential = "sandstorm.enrollment-token";
    public const string ControlPlaneCredential = "sandstorm.control-plane";
    public const string RegionCredential = "sandstorm.region";

    /// <summary>The files by their path inside the image (relative, no leading '/').</summary>
    /// <param name="plan">The Dockerfile's plan (its CMD/ENTRYPOINT becomes <see cref="AppService"/>).</param>
    /// <param name="bootc">True for a bootc image: the booted image's digest is read from <c>bootc status</c> at start.</param>
    public static IReadOnlyDictionary<string, string> Files(BuildPlan plan, bool bootc)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["usr/lib/sysusers.d/sandstorm-edge.conf"] =
                $"# The Sandstorm edge agent runs as this unprivileged user.\nu {AgentUser} - \"Sandstorm edge agent\" {StateDir} /usr/sbin/nologin\n",
            [$"usr/lib/systemd/system/{EnrollService}"] = EnrollUnit(),
            [$"usr/lib/systemd/system/{AgentService}"] = AgentUnit(bootc),
            [EnrollScript.TrimStart('/')] = EnrollScriptText(),
        };
        if (bootc)
        {
            files[DigestScript.TrimStart('/')] = DigestScriptText();
        }

        if (plan.Service is { } service)
        {
            files[$"usr/lib/systemd/system/{AppService}"] = AppUnit(service, plan);
        }

        return files;
    }

    /// <summary>The units to enable in the image.</summary>
    public static IReadOnlyList<string> Enabled(BuildPlan plan) =>
        plan.Service is null ? [EnrollService, AgentService] : [EnrollService, AgentService, AppService];

    private static string EnrollUnit() => $"""
        # First-boot enrolment of the Sandstorm edge agent. The enrolment token is never in the image: it comes at boot as
        # the systemd credential {TokenCredential} (SMBIOS type 11 "io.systemd.credential:{TokenCredential}=...", or
        # systemd.set_credential=, which any local user can read on /proc/cmdline), the control plane's URL as the credential
        # {ControlPlaneCredential} or sandstorm.control_plane= on the kernel command line. Skipped once the agent is enrolled.
        [Unit]
        Description=Sandstorm edge agent enrolment (first boot)
        Wants=network-online.target
        After=network-online.target systemd-sysusers.service
        ConditionPathExists=!{ConfigPath}

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        User={AgentUser}
        Group={AgentUser}
        StateDirectory=sandstorm-edge
        StateDirectoryMode=0700
        LoadCredential={TokenCredential}
        LoadCredential={ControlPlaneCredential}
        LoadCredential={RegionCredential}
        Environment=SANDSTORM_EDGE_CONFIG={ConfigPath}
        ExecStart={EnrollScript}
        NoNewPrivileges=yes
        ProtectSystem=strict
        ProtectHome=yes
        PrivateTmp=yes

        [Install]
        WantedBy=multi-user.target

        """;

    private static string AgentUnit(bool bootc)
    {
        var digest = bootc ? $"# Root ('+') only for bootc status: it writes the booted image's name and digest for the agent.\nExecStartPre=+{DigestScript}\n" : "";
        return $"""
            # The Sandstorm edge agent: unprivileged, connects out to its control plane only; reports this image's name and
            # digest ({ImageFile}) in its heartbeat.
            [Unit]
            Description=Sandstorm edge agent
            Wants=network-online.target
            After=network-online.target {EnrollService}
            Requires={EnrollService}
            ConditionPathExists={ConfigPath}

            [Service]
            User={AgentUser}
            Group={AgentUser}
            StateDirectory=sandstorm-edge
            StateDirectoryMode=0700
            Environment=SANDSTORM_EDGE_CONFIG={ConfigPath}
            Environment=SANDSTORM_EDGE_IMAGE_FILE={RuntimeImageFile}:{ImageFile}
            {digest}ExecStart={AgentBinary} start
            Restart=always
            RestartSec=2
            ProtectSystem=full
            ProtectHome=yes
            PrivateTmp=yes

            [Install]
            WantedBy=multi-user.target

            """;
    }

    private static string AppUnit(ServiceSpec service, BuildPlan plan)
    {
        var sb = new StringBuilder();
        sb.Append($"""
            # The image's program: Dockerfile line {service.Line} ({(plan.Service!.Argv is ["/bin/sh", "-c", _] ? "shell form" : "exec form")}).
            [Unit]
            Description=BootKit image program ({plan.Base.Image})
            Wants=network-online.target
            After=network-online.target

            [Service]

            """);
        if (service.User != "root")
        {
            var parts = service.User.Split(':');
            sb.Append("User=").Append(parts[0]).Append('\n');
            if (parts.Length == 2)
            {
                sb.Append("Group=").Append(parts[1]).Append('\n');
            }
        }

        sb.Append("WorkingDirectory=").Append(service.WorkingDirectory).Append('\n');
        // Docker's default PATH, unless the Dockerfile set its own.
        if (!service.Environment.ContainsKey("PATH"))
        {
            sb.Append("Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
        }

        foreach (var (name, value) in service.Environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            sb.Append("Environment=").Append(ShellQuote.SystemdEnvironment(name, value)).Append('\n');
        }

        sb.Append("ExecStart=").Append(string.Join(' ', service.Argv.Select(ShellQuote.Systemd))).Append('\n');
        sb.Append("Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n");
        return sb.ToString();
    }

    private static string EnrollScriptText() => $$"""
        #!/bin/sh
        # First-boot enrolment: material passed at boot, never baked into the image.
        set -eu
        creds="${CREDENTIALS_DIRECTORY:-}"
        url=""
        region=""
        token_file=""
        if [ -n "$creds" ] && [ -s "$creds/{{ControlPlaneCredential}}" ]; then url=$(cat "$creds/{{ControlPlaneCredential}}"); fi
        if [ -n "$creds" ] && [ -s "$creds/{{RegionCredential}}" ]; then region=$(cat "$creds/{{RegionCredential}}"); fi
        if [ -n "$creds" ] && [ -s "$creds/{{TokenCredential}}" ]; then token_file="$creds/{{TokenCredential}}"; fi
        # The URL (not the token: every local user reads /proc/cmdline) may come on the kernel command line.
        for word in $(cat /proc/cmdline); do
          case "$word" in
            sandstorm.control_plane=*) [ -n "$url" ] || url="${word#sandstorm.control_plane=}" ;;
            sandstorm.region=*) [ -n "$region" ] || region="${word#sandstorm.region=}" ;;
          esac
        done
        if [ -z "$url" ] || [ -z "$token_file" ]; then
          echo "sandstorm-edge-enroll: no enrolment material: pass the credential {{TokenCredential}} and the credential {{ControlPlaneCredential}} (or sandstorm.control_plane= on the kernel command line)" >&2
          exit 1
        fi
        set -- init --control-plane "$url" --enrollment-token-file "$token_file" --name "$(cat /etc/hostname 2>/dev/null || hostname)"
        if [ -n "$region" ]; then set -- "$@" --region "$region"; fi
        exec {{AgentBinary}} "$@"

        """;

    private static string DigestScriptText() => $$"""
        #!/bin/sh
        # bootc hosts: the booted image's name and digest, for the agent's heartbeat.
        set -eu
        mkdir -p /run/sandstorm
        status=$(bootc status --booted --format=json)
        name=$(printf '%s' "$status" | sed -n 's/.*"image": *"\([^"]*\)".*/\1/p' | head -n 1)
        digest=$(printf '%s' "$status" | sed -n 's/.*"imageDigest": *"\([^"]*\)".*/\1/p' | head -n 1)
        printf '{"name":"%s","digest":"%s"}\n' "$name" "$digest" > {{RuntimeImageFile}}.tmp
        mv {{RuntimeImageFile}}.tmp {{RuntimeImageFile}}

        """;
}
