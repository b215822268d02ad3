using Engine.Files;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// A file as the mm sees it (the kernel's inode with its <c>address_space</c>): its backing store, its page cache
/// (<c>i_pages</c>) and the VMAs that map it (<c>i_mmap</c>). A VMA of a file mapping points here; the public
/// <c>BackingFile</c> is the user's handle on it.
/// </summary>
internal sealed class Inode(int id, string name, BackingStore store, PageCache cache)
{
    /// <summary>The file's number, stored in its pages' <c>mapping</c> field (never 0).</summary>
    public int Id { get; } = id;

    /// <summary>The file's name.</summary>
    public string Name { get; } = name;

    /// <summary>The file's size in bytes (<c>i_size_read</c>); truncation changes it.</summary>
    public long Size => Store.Size;

    /// <summary>Pages the file can span: its capacity, fixed at creation (the page cache's slots).</summary>
    public int Pages => Store.Pages;

    /// <summary>Pages the file spans now: a fault at or beyond this page is beyond the end of the file.</summary>
    public int SizePages => Store.SizePages;

    /// <summary>
    /// <c>i_rwsem</c>: held for write across a truncation, so that two truncations of the file (to shrink it or grow
    /// it) run one after the other. Lock order: this, then the page lock, then <see cref="FileRmap.Lock"/>.
    /// </summary>
    public ReaderWriterSemaphore Lock { get; } = new();

    /// <summary>The backing store.</summary>
    public BackingStore Store { get; } = store;

    /// <summary>The page cache (<c>address_space-&gt;i_pages</c>).</summary>
    public PageCache Cache { get; } = cache;

    /// <summary>The VMAs mapping the file (<c>address_space-&gt;i_mmap</c>).</summary>
    public FileRmap Rmap { get; } = new();

    /// <inheritdoc/>
    public override string ToString() => $"'{Name}' ({Size} bytes)";
}
