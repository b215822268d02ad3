namespace Engine.AddressSpace;

/// <summary>A virtual memory area: [Start, End), page aligned. Changed only under the mm's mmap_lock held for write.</summary>
internal sealed class Vma(ulong start, ulong end, Prot prot, MapFlags flags)
{
    public ulong Start { get; set; } = start;

    public ulong End { get; set; } = end;

    public Prot Prot { get; set; } = prot;

    public MapFlags Flags { get; } = flags;

    public bool CanRead => Prot != Prot.None;

    public bool CanWrite => (Prot & Prot.Write) != 0;

    public bool Contains(ulong address) => address >= Start && address < End;

    public Vma Clone(ulong start, ulong end) => new(start, end, Prot, Flags);

    public override string ToString() => $"[0x{Start:x}, 0x{End:x}) {Prot} {Flags}";
}
