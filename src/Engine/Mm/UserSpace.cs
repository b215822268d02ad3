namespace Engine.Mm;

/// <summary>The user half of a 48-bit address space, as on x86-64 with 4-level tables.</summary>
internal static class UserSpace
{
    /// <summary>The lowest user address (page 0 is never mapped).</summary>
    public const ulong Start = 0x1000;

    /// <summary>One past the highest user address (47-bit user space).</summary>
    public const ulong End = 1UL << 47;
}
