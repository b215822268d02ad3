using Engine.Memory;
using Engine.Sync;

namespace Engine.PageTables;

/// <summary>
/// The split PTE-table locks (<c>pte_lockptr</c>): one spinlock per frame, so any frame that becomes a PTE table has
/// its lock ready, as the kernel keeps <c>ptl</c> in the table page's <c>struct page</c>.
/// </summary>
internal sealed class PageTableLocks
{
    private readonly long _basePfn;
    private readonly Spinlock[] _locks;

    public PageTableLocks(long basePfn, int frames)
    {
        _basePfn = basePfn;
        _locks = new Spinlock[frames];
        for (var i = 0; i < _locks.Length; i++)
        {
            _locks[i] = new Spinlock();
        }
    }

    /// <summary>The PTL of the PTE table in frame <paramref name="table"/>.</summary>
    public Spinlock Ptl(long table) => _locks[table - _basePfn];
}
