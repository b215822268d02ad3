namespace Engine;

/// <summary>
/// <c>mmap</c>'s ENOMEM: no gap in the process's address space is large enough for the mapping. Nothing was mapped
/// or allocated; the machine is consistent.
/// </summary>
public sealed class OutOfAddressSpaceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OutOfAddressSpaceException()
        : base("No room in the address space.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public OutOfAddressSpaceException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public OutOfAddressSpaceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
