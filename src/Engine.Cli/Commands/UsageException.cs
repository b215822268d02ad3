namespace Engine.Cli.Commands;

/// <summary>
/// A mistake in how the command was called (a bad option value, a missing file): printed as one line, exit code 2,
/// before any work starts.
/// </summary>
internal sealed class UsageException : Exception
{
    public UsageException()
    {
    }

    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>An argument the program refused, worded for the command line: without the parameter's name.</summary>
    public static UsageException From(ArgumentException refused, string prefix = "")
    {
        var message = refused.ParamName is null ? refused.Message : refused.Message.Replace($" (Parameter '{refused.ParamName}')", "", StringComparison.Ordinal);
        return new UsageException(prefix + message, refused);
    }
}
