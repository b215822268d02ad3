namespace Engine.Invariants;

/// <summary>
/// Thrown when an engine function is entered without a lock its contract requires (with <see cref="Checks.Enabled"/>):
/// a bug in the engine, never in the caller's use of the public API.
/// </summary>
public sealed class LockContractException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="function"/>, entered without <paramref name="lockName"/>.</summary>
    public LockContractException(string function, string lockName)
        : base($"Lock contract broken: {function} was entered without {lockName} held.")
    {
        Function = function;
        LockName = lockName;
    }

    /// <summary>Creates the exception.</summary>
    public LockContractException()
    {
        Function = LockName = "";
    }

    /// <summary>Creates the exception with a message.</summary>
    public LockContractException(string message)
        : base(message)
    {
        Function = LockName = "";
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public LockContractException(string message, Exception innerException)
        : base(message, innerException)
    {
        Function = LockName = "";
    }

    /// <summary>The engine function whose contract was broken.</summary>
    public string Function { get; }

    /// <summary>The lock it requires.</summary>
    public string LockName { get; }
}
