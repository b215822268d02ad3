using Engine.Files;

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

    /// <summary>The file's size in bytes.</summary>
    public long Size => Store.Size;

    /// <summary>Pages the file spans.</summary>
    public int Pages => Store.Pages;

    /// <summary>The backing store.</summary>
    public BackingStore Store { get; } = store;

    /// <summary>The page cache (<c>address_space-&gt;i_pages</c>).</summary>
    public PageCache Cache { get; } = cache;

    /// <summary>The VMAs mapping the file (<c>address_space-&gt;i_mmap</c>).</summary>
    public FileRmap Rmap { get; } = new();

    /// <inheritdoc/>
    public override string ToString() => $"'{Name}' ({Size} bytes)";
}
