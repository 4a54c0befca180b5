namespace Sandstorm.BootKit.Tests;

public sealed class DockerfileParserTests : IDisposable
{
    private readonly BuildContext _ctx = new();

    public void Dispose() => _ctx.Dispose();

    private DockerfileException Refused(string dockerfile) => Assert.Throws<DockerfileException>(() => _ctx.Parse(dockerfile));

    [Theory]
    [InlineData("debian:12", "debian", "bookworm")]
    [InlineData("debian:bookworm-slim", "debian", "bookworm")]
    [InlineData("docker.io/library/debian:12.8", "debian", "bookworm")]
    [InlineData("debian:13", "debian", "trixie")]
    [InlineData("debian:trixie", "debian", "trixie")]
    [InlineData("ubuntu:22.04", "ubuntu", "jammy")]
    [InlineData("ubuntu:jammy", "ubuntu", "jammy")]
    [InlineData("ubuntu:24.04", "ubuntu", "noble")]
    [InlineData("ubuntu:noble", "ubuntu", "noble")]
    public void Parse_KnownBaseImage_MapsToSuite(string image, string distribution, string suite)
    {
        var plan = _ctx.Parse($"FROM {image}\n");

        Assert.Equal(new BaseSuite(image, distribution, suite), plan.Base);
    }

    [Theory]
    [InlineData("alpine:3.20")]
    [InlineData("debian")]
    [InlineData("debian:latest")]
    [InlineData("debian:11")]
    [InlineData("ubuntu:20.04")]
    [InlineData("python:3.12-slim")]
    [InlineData("debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Parse_UnmappableBaseImage_RefusedWithLine(string image)
    {
        var e = Refused($"# base\n\nFROM {image}\n");

        Assert.Equal(3, e.Line);
        Assert.Contains(image, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("Dockerfile line 3:", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n   \n")]
    [InlineData("# only a comment\n# and another\n")]
    public void Parse_EmptyFile_Refused(string text)
    {
        var e = Refused(text);

        Assert.Equal(0, e.Line);
        Assert.Contains("no instructions", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ARG VERSION=1", "ARG")]
    [InlineData("HEALTHCHECK CMD true", "HEALTHCHECK")]
    [InlineData("VOLUME /data", "VOLUME")]
    [InlineData("LABEL a=b", "LABEL")]
    [InlineData("STOPSIGNAL SIGTERM", "STOPSIGNAL")]
    [InlineData("SHELL [\"/bin/bash\", \"-c\"]", "SHELL")]
    [InlineData("ONBUILD RUN true", "ONBUILD")]
    [InlineData("MAINTAINER someone", "MAINTAINER")]
    [InlineData("FROBNICATE now", "FROBNICATE")]
    public void Parse_UnknownInstruction_RefusedWithLine(string instruction, string keyword)
    {
        var e = Refused($"FROM debian:12\nRUN true \\\n  && true\n{instruction}\n");

        Assert.Equal(4, e.Line);
        Assert.Contains($"instruction {keyword} is not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_InstructionBeforeFrom_Refused()
    {
        var e = Refused("RUN true\nFROM debian:12\n");

        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void Parse_SecondFrom_RefusedAsMultiStage()
    {
        var e = Refused("FROM debian:12 AS build\nRUN true\nFROM debian:12\n");

        Assert.Equal(3, e.Line);
        Assert.Contains("multi-stage", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("COPY ../secret /etc/secret")]
    [InlineData("COPY sub/../../secret /etc/secret")]
    [InlineData("ADD ../secret /etc/secret")]
    [InlineData("COPY app.py ../../../secret /opt/")]
    public void Parse_CopyFromOutsideContext_Refused(string instruction)
    {
        File.WriteAllText(Path.Combine(_ctx.Root, "secret"), "s3cr3t");
        _ctx.File("app.py").File("sub/keep");

        var e = Refused($"FROM debian:12\n{instruction}\n");

        Assert.Equal(2, e.Line);
        Assert.Contains("outside the build context", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CopyOfSymlinkPointingOut_Refused()
    {
        File.WriteAllText(Path.Combine(_ctx.Root, "secret"), "s3cr3t");
        _ctx.Link("innocent.txt", Path.Combine(_ctx.Root, "secret"));

        var e = Refused("FROM debian:12\nCOPY innocent.txt /etc/\n");

        Assert.Equal(2, e.Line);
        Assert.Contains("symlink innocent.txt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CopyThroughSymlinkedFolderPointingOut_Refused()
    {
        File.WriteAllText(Path.Combine(_ctx.Root, "secret"), "s3cr3t");
        _ctx.Link("up", "..");

        var e = Refused("FROM debian:12\nCOPY up/secret /etc/\n");

        Assert.Contains("symlink up", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CopyOfFolderHoldingSymlinkPointingOut_Refused()
    {
        _ctx.File("app/main.py").Link("app/etc-passwd", "/etc/passwd");

        var e = Refused("FROM debian:12\nCOPY app /opt/app\n");

        Assert.Contains("app/etc-passwd", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CopyOfSymlinkInsideContext_Accepted()
    {
        _ctx.File("real.txt").Link("alias.txt", "real.txt");

        var plan = _ctx.Parse("FROM debian:12\nCOPY alias.txt /etc/\n");

        Assert.Equal(["alias.txt"], Assert.IsType<CopyStep>(plan.Steps[0]).Sources);
    }

    [Theory]
    [InlineData("ADD https://example.invalid/file.tar.gz /opt/")]
    [InlineData("ADD git@example.invalid:org/repo.git /src")]
    [InlineData("COPY http://example.invalid/x /opt/")]
    public void Parse_CopyFromUrl_Refused(string instruction)
    {
        var e = Refused($"FROM debian:12\n{instruction}\n");

        Assert.Equal(2, e.Line);
        Assert.Contains("URL", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("COPY --from=build /out /opt/", "--from")]
    [InlineData("COPY --link app.py /opt/", "--link")]
    [InlineData("ADD --checksum=sha256:00 app.py /opt/", "--checksum")]
    [InlineData("COPY *.py /opt/", "wildcards")]
    [InlineData("COPY missing.py /opt/", "does not exist")]
    [InlineData("COPY app.py", "at least one source")]
    [InlineData("ADD site.tar.gz /srv/", "archive")]
    [InlineData("RUN --mount=type=cache,target=/root true", "--mount")]
    [InlineData("EXPOSE 80-90", "not a port")]
    [InlineData("EXPOSE 70000", "not a port")]
    [InlineData("USER bad user!", "USER")]
    [InlineData("ENV 1BAD=x", "not a valid environment variable")]
    [InlineData("WORKDIR ${HOME:?unset}", "not supported")]
    [InlineData("FROM debian:12", "multi-stage")]
    [InlineData("CMD", "needs arguments")]
    public void Parse_UnsupportedForm_RefusedWithLine(string instruction, string expected)
    {
        _ctx.File("app.py").File("site.tar.gz");

        var e = Refused($"FROM debian:12\n\n{instruction}\n");

        Assert.Equal(3, e.Line);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_OtherEscapeDirective_Refused()
    {
        var e = Refused("# escape=`\nFROM debian:12\n");

        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void Parse_FullDockerfile_GivesThePlan()
    {
        _ctx.File("requirements.txt").File("app/main.py").File("app/lib/util.py");
        var plan = _ctx.Parse("""
            # syntax=docker/dockerfile:1
            FROM debian:12-slim AS base

            # packages first
            RUN apt-get update \
                # a comment inside a continuation
                && apt-get install -y --no-install-recommends \
                   python3 python3-pip
            ENV APP_HOME=/opt/app PORT=8080
            ENV GREETING hello world
            WORKDIR $APP_HOME
            COPY requirements.txt ./
            ADD --chown=app:app app/ ${APP_HOME}/src/
            RUN ["useradd", "--system", "app"]
            WORKDIR src
            USER app
            EXPOSE 8080/tcp 53/udp
            ENTRYPOINT ["python3", "-m", "app"]
            CMD ["--port", "8080"]
            """);

        Assert.Equal(new BaseSuite("debian:12-slim", "debian", "bookworm"), plan.Base);
        var run = Assert.IsType<RunStep>(plan.Steps[0]);
        Assert.Equal(5, run.Line);
        Assert.Equal(["/bin/sh", "-c"], run.Argv.Take(2));
        Assert.Equal(
            "apt-get update && apt-get install -y --no-install-recommends python3 python3-pip",
            string.Join(' ', run.Argv[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal("root", run.User);
        Assert.Equal(new WorkdirStep(11, "/opt/app"), plan.Steps[1]);
        var requirements = Assert.IsType<CopyStep>(plan.Steps[2]);
        Assert.Equal(["requirements.txt"], requirements.Sources);
        Assert.Equal("/opt/app/", requirements.Destination);
        var app = Assert.IsType<CopyStep>(plan.Steps[3]);
        Assert.Equal(["app"], app.Sources);
        Assert.Equal(("/opt/app/src/", "app:app"), (app.Destination, app.Chown));
        Assert.Equal(["useradd", "--system", "app"], Assert.IsType<RunStep>(plan.Steps[4]).Argv);
        Assert.Equal("/opt/app", ((RunStep)plan.Steps[4]).WorkingDirectory);
        Assert.Equal(new WorkdirStep(15, "/opt/app/src"), plan.Steps[5]);
        Assert.Equal("hello world", plan.Environment["GREETING"]);
        Assert.Equal("8080", plan.Environment["PORT"]);
        Assert.Equal([new ExposedPort(8080, "tcp"), new ExposedPort(53, "udp")], plan.Ports);
        Assert.Equal(("app", "/opt/app/src"), (plan.User, plan.WorkingDirectory));
        var service = Assert.IsType<ServiceSpec>(plan.Service);
        Assert.Equal(["python3", "-m", "app", "--port", "8080"], service.Argv);
        Assert.Equal(("app", "/opt/app/src", 18), (service.User, service.WorkingDirectory, service.Line));
    }

    [Fact]
    public void Parse_ShellFormCmd_RunsThroughShell()
    {
        var plan = _ctx.Parse("FROM ubuntu:24.04\nCMD exec python3 -m http.server 8000\n");

        Assert.Equal(["/bin/sh", "-c", "exec python3 -m http.server 8000"], plan.Service!.Argv);
    }

    [Fact]
    public void Parse_ShellFormEntrypoint_IgnoresCmdAsDockerDoes()
    {
        var plan = _ctx.Parse("FROM ubuntu:24.04\nCMD [\"--verbose\"]\nENTRYPOINT /usr/bin/server\n");

        Assert.Equal(["/bin/sh", "-c", "/usr/bin/server"], plan.Service!.Argv);
    }

    [Fact]
    public void Parse_NoCmdOrEntrypoint_HasNoService()
    {
        var plan = _ctx.Parse("FROM debian:13\nRUN true\n");

        Assert.Null(plan.Service);
    }

    [Fact]
    public void Parse_CopyRelativeDestination_ResolvedAgainstWorkdir()
    {
        _ctx.File("a.txt");

        var plan = _ctx.Parse("FROM debian:12\nWORKDIR /srv/app\nCOPY /a.txt conf/a.txt\n");

        var copy = Assert.IsType<CopyStep>(plan.Steps[1]);
        Assert.Equal(["a.txt"], copy.Sources);
        Assert.Equal(("/srv/app/conf/a.txt", false), (copy.Destination, copy.DestinationIsDirectory));
    }

    [Fact]
    public void ParseFile_MissingFile_Refused()
    {
        var e = Assert.Throws<DockerfileException>(() => DockerfileParser.ParseFile(Path.Combine(_ctx.Context, "Dockerfile")));

        Assert.Contains("no such file", e.Message, StringComparison.Ordinal);
    }
}
