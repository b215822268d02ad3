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
}
