namespace Engine;

/// <summary>Why an access was refused.</summary>
public enum SegmentationFaultReason
{
    /// <summary>No mapping covers the address (SEGV_MAPERR).</summary>
    Unmapped,
    /// <summary>The mapping does not allow the access (SEGV_ACCERR).</summary>
    Protection,
}
