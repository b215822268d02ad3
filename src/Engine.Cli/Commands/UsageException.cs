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

    /// <summary>
    /// An argument the program refused, worded for the command line: its first line, without the parameter's name, and
    /// with the value refused when the exception carries it.
    /// </summary>
    public static UsageException From(ArgumentException refused, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(refused);

        // ArgumentOutOfRangeException puts "Actual value was …" on a line of its own; the value is appended instead.
        var message = refused.Message.Split('\n')[0].TrimEnd('\r');
        if (refused.ParamName is not null)
        {
            message = message.Replace($" (Parameter '{refused.ParamName}')", "", StringComparison.Ordinal);
        }

        if (refused is ArgumentOutOfRangeException { ActualValue: { } actual })
        {
            message = $"{message.TrimEnd('.')} (got {actual}).";
        }

        return new UsageException(prefix + message, refused);
    }
}
