using Engine.Memory;
using Engine.Sync;

namespace Engine.Files;

/// <summary>
/// A file's backing store (the "disk"): what survives eviction. It changes only when writeback copies a dirty
/// page-cache page out, is read when a page-cache miss fills a frame, and is zeroed where truncation drops the file's
/// blocks. Its capacity (<see cref="Pages"/>) is fixed when the file is created; its size (<see cref="Size"/>, the
/// kernel's <c>i_size</c>) moves within it with truncation.
/// </summary>
internal sealed class BackingStore
{
    private readonly ulong[] _words;
    private long _size;

    public BackingStore(long size)
    {
        _size = size;
        Pages = PagesFor(size);
        _words = new ulong[(long)Pages * PhysicalMemory.WordsPerFrame];
    }

    /// <summary>
    /// The file's size in bytes (<c>i_size_read</c>). Changed only by <see cref="PageCache.PublishSize"/>, under the
    /// page cache's index lock.
    /// </summary>
    public long Size => Atomic.Read(ref _size);

    /// <summary>The largest size the file can have: its size at creation (the kernel's <c>s_maxbytes</c>, per file here).</summary>
    public long MaxSize => (long)Pages * PhysicalMemory.PageSize;

    /// <summary>Pages the file can span (its capacity, the page cache's slots): fixed at creation.</summary>
    public int Pages { get; }

    /// <summary>
    /// Pages the file spans now (<c>DIV_ROUND_UP(i_size, PAGE_SIZE)</c>): an access to a page at or beyond this index
    /// is beyond the end of the file (SIGBUS).
    /// </summary>
    public int SizePages => PagesFor(Size);

    /// <summary>Pages a file of <paramref name="size"/> bytes spans.</summary>
    public static int PagesFor(long size) => (int)((size + PhysicalMemory.PageSize - 1) / PhysicalMemory.PageSize);

    /// <summary>The word at byte <paramref name="offset"/> (8-byte aligned, inside the file), read atomically.</summary>
    public ulong ReadWord(long offset) => Atomic.Read(ref _words[offset / sizeof(ulong)]);

    /// <summary>
    /// Page <paramref name="index"/>, for the bulk copies of I/O (one visible step each, as <c>copy_page</c> is in the
    /// fault path); single words are read with <see cref="ReadWord"/>.
    /// </summary>
    public Span<ulong> Page(int index) => _words.AsSpan(index * PhysicalMemory.WordsPerFrame, PhysicalMemory.WordsPerFrame);

    /// <summary>Sets the size; enter with the page cache's index lock held (<see cref="PageCache.PublishSize"/>).</summary>
    internal void SetSize(long size) => Atomic.Write(ref _size, size);

    /// <summary>
    /// Drops the blocks of pages <paramref name="first"/> and up (truncation: they read as zeros if the file grows
    /// again). One visible step. Enter with no page of them cached and none able to be (they are beyond the size).
    /// </summary>
    public void DropPages(int first)
    {
        if (first >= Pages)
        {
            return;
        }

        SchedulingPoint.Interleave();
        _words.AsSpan(first * PhysicalMemory.WordsPerFrame).Clear();
    }

    /// <summary>
    /// Zeroes page <paramref name="index"/> from byte <paramref name="from"/> (1 to 4095) to its end, byte exact: the
    /// part of the file's last block beyond its end. One visible step. Enter with the page's cached copy locked, or
    /// with the index lock held and the page not cached (so no writeback or fill is copying it).
    /// </summary>
    public void ZeroTail(int index, int from) => PageTail.Zero(Page(index), from);
}
