using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Engine.Cli.Commands;

/// <summary>
/// The checks every command makes on what it is given before it starts any work: numeric options that refuse a value
/// out of range while the command line is parsed (so the mistake is one line naming the option, exit code 2), and
/// the files and folders a command will read or write, tried at once rather than after a run whose results would
/// then be lost.
/// </summary>
internal static class Inputs
{
    /// <summary>The longest <c>stress --duration</c>: a year, in seconds (far beyond any useful run, far below <see cref="TimeSpan.MaxValue"/>).</summary>
    public const double MaxSeconds = 365 * 24 * 3600;

    /// <summary>
    /// An integer option that accepts <paramref name="min"/> to <paramref name="max"/>; anything else (a word, a
    /// fraction, a number out of range) is a parse error that names the option and the value.
    /// </summary>
    public static Option<int> Integer(string name, string description, int defaultValue, int min, int max = int.MaxValue, params string[] aliases)
    {
        var option = new Option<int>(name, aliases) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.CustomParser = result => ParseInteger(result, name, min, max) ?? defaultValue;
        return option;
    }

    /// <summary>As <see cref="Integer"/>, for an option whose absence means "the default of whatever uses it".</summary>
    public static Option<int?> OptionalInteger(string name, string description, int min, int max = int.MaxValue, params string[] aliases)
    {
        var option = new Option<int?>(name, aliases) { Description = description };
        option.CustomParser = result => ParseInteger(result, name, min, max);
        return option;
    }

    /// <summary>A 64-bit integer option (a seed): any whole number that fits.</summary>
    public static Option<long> Long(string name, string description, long defaultValue)
    {
        var option = new Option<long>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.CustomParser = result =>
        {
            if (Single(result, name) is not { } text)
            {
                return defaultValue;
            }

            if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }

            result.AddError(IsWholeNumber(text)
                ? $"{name} must be {long.MinValue:N0} to {long.MaxValue:N0} (got {text})."
                : $"{name} expects a whole number (got '{text}').");
            return defaultValue;
        };
        return option;
    }

    /// <summary>A number of seconds above 0 and at most <see cref="MaxSeconds"/>; NaN and infinities are refused.</summary>
    public static Option<double> Seconds(string name, string description, double defaultValue, params string[] aliases)
    {
        var option = new Option<double>(name, aliases) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.CustomParser = result =>
        {
            if (Single(result, name) is not { } text)
            {
                return defaultValue;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value <= 0 || value > MaxSeconds)
            {
                result.AddError($"{name} must be a number of seconds above 0 and at most {MaxSeconds:N0} (a year) (got '{text}').");
                return defaultValue;
            }

            return value;
        };
        return option;
    }

    /// <summary>
    /// A factor (<c>--working-set 1.5</c>): a number above 0 and at most <paramref name="max"/>; NaN, infinities and
    /// words are refused. Absent: null.
    /// </summary>
    public static Option<double?> Factor(string name, string description, double max)
    {
        var option = new Option<double?>(name) { Description = description };
        option.CustomParser = result =>
        {
            if (Single(result, name) is not { } text)
            {
                return null;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value) || value <= 0 || value > max)
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{name} must be a number above 0 and at most {max:0.###} (got '{text}')."));
                return null;
            }

            return value;
        };
        return option;
    }

    /// <summary>
    /// Creates (or truncates) the file <paramref name="path"/> that <paramref name="option"/> names, for results written
    /// at the end of the run: a path that cannot be written is refused now, before the work.
    /// </summary>
    public static FileStream CreateOutputFile(string path, string option)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException($"{option} needs a file name (got an empty string).");
        }

        if (Directory.Exists(path))
        {
            throw new UsageException($"{option}: '{path}' is a folder, not a file.");
        }

        try
        {
            return new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option}: cannot write '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The folder <paramref name="path"/> that <paramref name="option"/> names, created if missing, once a file has been
    /// written into it and removed again: its full path, or a <see cref="UsageException"/> saying why it cannot be used.
    /// </summary>
    public static string WritableDirectory(string path, string option)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException($"{option} needs a folder name (got an empty string).");
        }

        if (File.Exists(path))
        {
            throw new UsageException($"{option}: '{path}' is a file, not a folder.");
        }

        try
        {
            var full = Directory.CreateDirectory(path).FullName;
            var probe = Path.Combine(full, $".engine-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }

            return full;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option}: cannot write into '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The full path of the existing, readable file <paramref name="path"/> (<paramref name="what"/> says what it should
    /// be, for the message), or a <see cref="UsageException"/>.
    /// </summary>
    public static string ReadableFile(string path, string what)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException($"The {what} needs a file name (got an empty string).");
        }

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"'{path}' is not a usable path for the {what}: {e.Message}", e);
        }

        if (Directory.Exists(full))
        {
            throw new UsageException($"'{path}' is a folder, not the {what}.");
        }

        if (!File.Exists(full))
        {
            throw new UsageException($"No {what} at '{full}'.");
        }

        try
        {
            using (new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"Cannot read the {what} '{full}': {e.Message}", e);
        }

        return full;
    }

    private static int? ParseInteger(ArgumentResult result, string name, int min, int max)
    {
        if (Single(result, name) is not { } text)
        {
            return null;
        }

        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        var range = (min, max) switch
        {
            (1, int.MaxValue) => "a positive whole number",
            (0, int.MaxValue) => "a whole number, 0 or more",
            (int.MinValue, int.MaxValue) => "a whole number",
            (_, int.MaxValue) => $"a whole number, at least {min:N0}",
            _ => $"a whole number from {min:N0} to {max:N0}",
        };
        var whole = IsWholeNumber(text);
        var fits = int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);
        result.AddError(!whole ? $"{name} expects {range} (got '{text}')."
            : (min, max) == (int.MinValue, int.MaxValue) ? $"{name} must be from {int.MinValue:N0} to {int.MaxValue:N0} (got {text})."
            : !fits && max == int.MaxValue ? $"{name} must be {range} up to {int.MaxValue:N0} (got {text})."
            : $"{name} must be {range} (got {text}).");
        return null;
    }

    /// <summary>The option's one value, or null (with an error) when it has none.</summary>
    private static string? Single(ArgumentResult result, string name)
    {
        if (result.Tokens.Count == 0)
        {
            result.AddError($"{name} needs a value.");
            return null;
        }

        return result.Tokens[^1].Value;
    }

    private static bool IsWholeNumber(string text) => text.Length > 0 && text.TrimStart('-', '+').Length > 0 && text.TrimStart('-', '+').All(char.IsAsciiDigit);
}
