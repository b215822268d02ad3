using Engine.Memory;

namespace Engine.AddressSpace;

/// <summary>
/// A virtual memory area: [Start, End), page aligned. Changed only under the mm's mmap_lock held for write (and, for a
/// file mapping, its file's <see cref="FileRmap.Lock"/> held for write, since rmap walks read it).
/// </summary>
internal sealed class Vma(MmStruct mm, ulong start, ulong end, Prot prot, MapFlags flags, BackingFile? file = null, long pgOff = 0)
{
    /// <summary>The address space this VMA belongs to (<c>vm_mm</c>).</summary>
    public MmStruct Mm { get; } = mm;

    public ulong Start { get; set; } = start;

    public ulong End { get; set; } = end;

    public Prot Prot { get; set; } = prot;

    public MapFlags Flags { get; } = flags;

    /// <summary>The mapped file (<c>vm_file</c>), or null for anonymous memory.</summary>
    public BackingFile? File { get; } = file;

    /// <summary>The file page mapped at <see cref="Start"/> (<c>vm_pgoff</c>).</summary>
    public long PgOff { get; } = pgOff;

    public bool CanRead => Prot != Prot.None;

    public bool CanWrite => (Prot & Prot.Write) != 0;

    /// <summary>A shared mapping: stores reach the file (<c>VM_SHARED</c>).</summary>
    public bool IsShared => (Flags & MapFlags.Shared) != 0;

    public bool Contains(ulong address) => address >= Start && address < End;

    /// <summary>The file page mapped at <paramref name="address"/> (<c>linear_page_index</c>).</summary>
    public int FilePageIndex(ulong address) => (int)(PgOff + (long)((address - Start) >> PhysicalMemory.PageShift));

    /// <summary>The address at which file page <paramref name="index"/> is mapped, or null when outside this VMA.</summary>
    public ulong? AddressOf(long index)
    {
        var start = PgOff;
        var pages = (long)((End - Start) >> PhysicalMemory.PageShift);
        return index >= start && index < start + pages ? Start + ((ulong)(index - start) << PhysicalMemory.PageShift) : null;
    }

    /// <summary>A copy covering [<paramref name="start"/>, <paramref name="end"/>) of this VMA, in <paramref name="owner"/> (default: the same mm).</summary>
    public Vma Clone(ulong start, ulong end, MmStruct? owner = null)
        => new(owner ?? Mm, start, end, Prot, Flags, File, PgOff + (long)((start - Start) >> PhysicalMemory.PageShift));

    public override string ToString() => File is null ? $"[0x{Start:x}, 0x{End:x}) {Prot} {Flags}" : $"[0x{Start:x}, 0x{End:x}) {Prot} {Flags} {File} page {PgOff}";
}
