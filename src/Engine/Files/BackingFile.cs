using Engine.AddressSpace;
using Engine.Rmap;
using Engine.Memory;
using Engine.Sync;

namespace Engine;

/// <summary>
/// A file with a backing store (the "disk") and a page cache in front of it. Created by
/// <see cref="Machine.CreateFile"/>; mapped with <see cref="Process.Mmap(ulong, Prot, MapFlags, BackingFile, long)"/>.
/// The backing store holds what survives eviction: it changes only when <see cref="Machine.Writeback"/> copies a
/// dirty page-cache page out.
/// </summary>
public sealed class BackingFile
{
    private readonly ulong[] _stored;

    internal BackingFile(Machine machine, int id, string name, long size)
    {
        Machine = machine;
        Id = id;
        Name = name;
        Size = size;
        Pages = (int)((size + PhysicalMemory.PageSize - 1) / PhysicalMemory.PageSize);
        _stored = new ulong[(long)Pages * PhysicalMemory.WordsPerFrame];
        Cache = new PageCache(this, Pages);
        Rmap = new FileRmap();
    }

    /// <summary>The file's name.</summary>
    public string Name { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Size { get; }

    /// <summary>
    /// The 64-bit word the backing store holds at <paramref name="offset"/> (8-byte aligned, inside the file): what
    /// a reader would find after every cached page was dropped.
    /// </summary>
    public ulong ReadStored(long offset)
    {
        if (offset < 0 || offset >= Size || (offset & 7) != 0)
        {
            throw new ArgumentException($"Offset {offset} is not an 8-byte aligned offset inside '{Name}' ({Size} bytes).", nameof(offset));
        }

        return Atomic.Read(ref _stored[offset / sizeof(ulong)]);
    }

    /// <inheritdoc/>
    public override string ToString() => $"'{Name}' ({Size} bytes)";

    internal Machine Machine { get; }

    /// <summary>The file's number, stored in its pages' <c>mapping</c> field (never 0).</summary>
    internal int Id { get; }

    /// <summary>Pages the file spans.</summary>
    internal int Pages { get; }

    /// <summary>The page cache (<c>address_space->i_pages</c>).</summary>
    internal PageCache Cache { get; }

    /// <summary>The VMAs mapping the file (<c>address_space->i_mmap</c>).</summary>
    internal FileRmap Rmap { get; }

    /// <summary>
    /// Page <paramref name="index"/> of the backing store, for the bulk copies of I/O (one visible step each, as
    /// <c>copy_page</c> is in the fault path); single words are read with <see cref="ReadStored"/>.
    /// </summary>
    internal Span<ulong> StoredPage(int index) => _stored.AsSpan(index * PhysicalMemory.WordsPerFrame, PhysicalMemory.WordsPerFrame);
}
