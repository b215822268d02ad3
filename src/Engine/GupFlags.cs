namespace Engine;

/// <summary>How <see cref="Cpu.PinUserPages(Process, ulong, int, GupFlags)"/> and <see cref="Cpu.GetUserPages"/> take their pages (the kernel's FOLL_* flags).</summary>
[Flags]
public enum GupFlags
{
    /// <summary>Read access (a read-only pin or reference).</summary>
    None = 0,

    /// <summary><c>FOLL_WRITE</c>: the caller will write the pages; missing or read-only entries take a write fault.</summary>
    Write = 1,

    /// <summary><c>FOLL_LONGTERM</c>: the pin may be held indefinitely (io_uring fixed buffers, RDMA).</summary>
    LongTerm = 2,

    /// <summary>Only the lockless fast path (<c>*_fast_only</c>): returns what it could take without faulting.</summary>
    FastOnly = 4,

    /// <summary>Never the fast path: walk under the mmap_lock (<c>pin_user_pages</c> rather than <c>pin_user_pages_fast</c>).</summary>
    NoFast = 8,

    /// <summary>
    /// <c>FOLL_FORCE</c>, as ptrace and /proc/pid/mem use it: with <see cref="Write"/>, a read-only private mapping may
    /// be written; the write breaks copy-on-write and lands in the process's private copy, never in the file.
    /// </summary>
    Force = 16,
}
