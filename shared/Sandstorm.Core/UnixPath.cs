namespace Sandstorm.Core;

/// <summary>Unix paths as text (always '/'-separated): paths inside an image, or a sandboxed process's paths as the host sees them.</summary>
public static class UnixPath
{
    /// <summary><paramref name="path"/> against <paramref name="directory"/> when relative, normalised ('.', '..' and '//' folded; never above '/').</summary>
    public static string Combine(string directory, string path)
    {
        var joined = path.StartsWith('/') ? path : directory.TrimEnd('/') + "/" + path;
        var parts = new List<string>();
        foreach (var part in joined.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }
            }
            else if (part != ".")
            {
                parts.Add(part);
            }
        }

        return "/" + string.Join('/', parts);
    }
}
