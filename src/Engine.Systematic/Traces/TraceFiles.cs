namespace Engine.Systematic;

/// <summary>Where the JSON trace of a bug is written, for either scheduler.</summary>
internal static class TraceFiles
{
    /// <summary>
    /// Writes <paramref name="bug"/>'s trace into the configured folder (a folder under the system's temporary
    /// directory by default), named after the test, seed, iteration and kind; returns the path, or null when the file
    /// could not be written.
    /// </summary>
    public static string? TrySave(Configuration configuration, BugReport bug)
    {
        try
        {
            var directory = configuration.TraceDirectory ?? Path.Combine(Path.GetTempPath(), "engine-systematic");
            var name = string.Concat((configuration.TestName ?? "test").Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
            var scheduler = bug.Trace.Scheduler is { } external ? $"-{external}" : "";
            var path = Path.Combine(directory, $"{name}{scheduler}-seed{configuration.Seed}-iter{bug.Iteration}-{bug.Kind}.json".ToLowerInvariant());
            bug.Trace.Save(path);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
