namespace Engine;

/// <summary>Why an access was refused.</summary>
public enum SegmentationFaultReason
{
    /// <summary>No mapping covers the address (SEGV_MAPERR).</summary>
    Unmapped,
    /// <summary>The mapping does not allow the access (SEGV_ACCERR).</summary>
    Protection,

    /// <summary>
    /// The address is not a user address: non-canonical (bits 63–47 not all equal) or in the kernel half, which a
    /// user access cannot reach on x86-64 (a general-protection or page fault, delivered as SIGSEGV).
    /// </summary>
    NotUserAddress,

    /// <summary>
    /// The address is mapped from a file, but at or beyond the end of the file: the page it falls in starts at or past
    /// the file's size (a truncation made the file shorter than the mapping). The kernel delivers SIGBUS (BUS_ADRERR);
    /// the model reports it here with the segmentation faults.
    /// </summary>
    BeyondEndOfFile,
}
