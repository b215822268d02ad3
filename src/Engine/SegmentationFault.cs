using System.Globalization;

namespace Engine;

/// <summary>An access the model rejects, as the kernel would with SIGSEGV.</summary>
public sealed class SegmentationFault : Exception
{
    /// <summary>Creates the exception.</summary>
    public SegmentationFault(ulong address, SegmentationFaultReason reason, bool write)
        : base(string.Create(CultureInfo.InvariantCulture, $"{(reason == SegmentationFaultReason.BeyondEndOfFile ? "Bus error" : "Segmentation fault")}: {(write ? "write to" : "read of")} 0x{address:x}: {Describe(reason)}."))
    {
        Address = address;
        Reason = reason;
        IsWrite = write;
    }

    /// <summary>Creates the exception (for serializers and tools).</summary>
    public SegmentationFault()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public SegmentationFault(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public SegmentationFault(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    private static string Describe(SegmentationFaultReason reason) => reason switch
    {
        SegmentationFaultReason.Unmapped => "no mapping",
        SegmentationFaultReason.BeyondEndOfFile => "beyond the end of the mapped file (SIGBUS)",
        _ => "the mapping does not allow it",
    };

    /// <summary>The faulting address.</summary>
    public ulong Address { get; }

    /// <summary>Why: unmapped, protection, not a user address, or beyond the end of a mapped file.</summary>
    public SegmentationFaultReason Reason { get; }

    /// <summary>True for a store.</summary>
    public bool IsWrite { get; }
}
