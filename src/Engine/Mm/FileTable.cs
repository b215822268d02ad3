using Engine.Files;
using Engine.Memory;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// The machine's files, by number: a page-cache page's <c>mapping</c> field holds its file's number, and
/// <see cref="OfPage"/> turns it back into the file (<c>folio-&gt;mapping</c>). Files are never removed, so the table
/// only grows; lookups read it without a lock (copy on write under <see cref="_lock"/>).
/// </summary>
internal sealed class FileTable(Memmap memmap, PhysicalMemory memory, FrameAllocator allocator, PageRelease release, StatCounters counters)
{
    private readonly Spinlock _lock = new();
    private Inode[] _files = [];

    /// <summary>A new file of <paramref name="size"/> bytes whose backing store holds zeros.</summary>
    public Inode Create(string name, long size)
    {
        _lock.Enter();
        try
        {
            var store = new BackingStore(size);
            var file = new Inode(_files.Length + 1, name, store, new PageCache(_files.Length + 1, store, memmap, memory, allocator, release, counters));
            var table = new Inode[_files.Length + 1];
            _files.CopyTo(table, 0);
            table[^1] = file;
            Atomic.Write(ref _files, table);
            return file;
        }
        finally
        {
            _lock.Exit();
        }
    }

    /// <summary>Every file.</summary>
    public IReadOnlyList<Inode> All => Atomic.Read(ref _files);

    /// <summary>The file whose pages carry <paramref name="id"/> in their <c>mapping</c> field.</summary>
    public Inode ById(long id) => Atomic.Read(ref _files)[id - 1];

    /// <summary>The file a page-cache page belongs to (<c>folio-&gt;mapping</c>). Enter holding the page somehow.</summary>
    public Inode OfPage(long pfn) => ById(Atomic.Read(ref memmap.Page(pfn).Mapping));
}
