namespace Engine;

/// <summary>How a machine stores its page-table entries.</summary>
public enum PteLayout
{
    /// <summary>One 64-bit word per entry, read and written atomically (x86-64).</summary>
    Native64,

    /// <summary>
    /// Two 32-bit halves per entry, written one at a time in PAE order (32-bit x86 with PAE): high then low when an
    /// entry becomes present, low then high when it is cleared. Software reads it with <c>PtepGetLockless</c>; the
    /// hardware walker reads all 64 bits atomically. Physical memory sits above 4 GiB, so the high half carries pfn
    /// bits and a torn read yields a wrong pfn.
    /// </summary>
    SplitPae,
}
