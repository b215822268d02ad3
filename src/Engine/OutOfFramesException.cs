namespace Engine;

/// <summary>No physical frame was left for a page or a page table. The operation was undone; the machine is consistent.</summary>
public sealed class OutOfFramesException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OutOfFramesException()
        : base("Out of physical frames.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public OutOfFramesException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public OutOfFramesException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
