using Engine.Memory;
using Engine.Sync;

namespace Engine.Files;

/// <summary>
/// A file's backing store (the "disk"): what survives eviction. It changes only when writeback copies a dirty
/// page-cache page out, and is read when a page-cache miss fills a frame.
/// </summary>
internal sealed class BackingStore
{
    private readonly ulong[] _words;

    public BackingStore(long size)
    {
        Size = size;
        Pages = (int)((size + PhysicalMemory.PageSize - 1) / PhysicalMemory.PageSize);
        _words = new ulong[(long)Pages * PhysicalMemory.WordsPerFrame];
    }

    /// <summary>The file's size in bytes.</summary>
    public long Size { get; }

    /// <summary>Pages the file spans.</summary>
    public int Pages { get; }

    /// <summary>The word at byte <paramref name="offset"/> (8-byte aligned, inside the file), read atomically.</summary>
    public ulong ReadWord(long offset) => Atomic.Read(ref _words[offset / sizeof(ulong)]);

    /// <summary>
    /// Page <paramref name="index"/>, for the bulk copies of I/O (one visible step each, as <c>copy_page</c> is in the
    /// fault path); single words are read with <see cref="ReadWord"/>.
    /// </summary>
    public Span<ulong> Page(int index) => _words.AsSpan(index * PhysicalMemory.WordsPerFrame, PhysicalMemory.WordsPerFrame);
}
