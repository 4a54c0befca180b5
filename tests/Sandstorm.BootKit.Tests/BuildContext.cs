namespace Sandstorm.BootKit.Tests;

/// <summary>A temporary build context folder with files and symlinks, removed afterwards.</summary>
public sealed class BuildContext : IDisposable
{
    public BuildContext()
    {
        Root = Directory.CreateTempSubdirectory("bootkit-ctx-").FullName;
        Context = Directory.CreateDirectory(Path.Combine(Root, "ctx")).FullName;
    }

    /// <summary>Parent of the context: a place for files outside it.</summary>
    public string Root { get; }

    public string Context { get; }

    public BuildContext File(string relative, string content = "x")
    {
        var path = Path.Combine(Context, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, content);
        return this;
    }

    public BuildContext Link(string relative, string target)
    {
        var path = Path.Combine(Context, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.CreateSymbolicLink(path, target);
        return this;
    }

    public BuildPlan Parse(string dockerfile) => DockerfileParser.Parse(dockerfile, Context);

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
