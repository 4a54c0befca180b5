namespace Sandstorm.Local;

/// <summary>The local host's state directory (<c>.sandstorm/</c>: the dev API key, Azurite's data, the signing key): the owner's only.</summary>
public static class LocalState
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates the directory 0700, or tightens an existing one to 0700.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, Private);
        File.SetUnixFileMode(path, Private);
    }
}
