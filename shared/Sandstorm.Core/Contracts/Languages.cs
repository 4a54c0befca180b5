namespace Sandstorm.Core.Contracts;

/// <summary>The language allow-list and how each is started.</summary>
public static class Languages
{
    public const string Python = "python";
    public const string JavaScript = "javascript";
    public const string Bash = "bash";

    /// <summary>Languages a run may ask for.</summary>
    public static IReadOnlyList<string> Supported { get; } = [Python, JavaScript, Bash];

    public static bool IsSupported(string? language) => language is not null && Supported.Contains(language);

    /// <summary>File name the code is written to inside the sandbox.</summary>
    public static string MainFile(string language) => language switch
    {
        Python => "main.py",
        JavaScript => "main.js",
        Bash => "main.sh",
        _ => throw new ArgumentOutOfRangeException(nameof(language), language, "unsupported language"),
    };

    /// <summary>Interpreter (absolute path of the system's, which sandboxes can bind read-only) and its arguments before the script.</summary>
    public static (string Command, string[] Arguments) Interpreter(string language) => language switch
    {
        Python => ("/usr/bin/python3", ["-u"]),
        JavaScript => ("/usr/bin/node", []),
        Bash => ("/bin/bash", []),
        _ => throw new ArgumentOutOfRangeException(nameof(language), language, "unsupported language"),
    };
}
