using Engine.Invariants;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// The VMAs that map a file (the kernel's <c>i_mmap</c> with <c>i_mmap_rwsem</c>): an rmap walk reads it under the
/// read side to find every PTE that may map a page; mapping, splitting and unmapping change it under the write side.
/// Lock order: mmap_lock, then page lock, then this, then a PTL.
/// </summary>
internal sealed class FileRmap
{
    private readonly List<Vma> _vmas = [];

    /// <summary><c>i_mmap_rwsem</c>.</summary>
    public ReaderWriterSemaphore Lock { get; } = new();

    /// <summary>The mapping VMAs. Read with <see cref="Lock"/> held (either side).</summary>
    public IReadOnlyList<Vma> Vmas => _vmas;

    /// <summary><c>vma_interval_tree_insert</c>. Enter with <see cref="Lock"/> held for write.</summary>
    public void Add(Vma vma)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(Lock, "i_mmap_rwsem");
        }

        _vmas.Add(vma);
    }

    /// <summary>Adds under the write side.</summary>
    public void Link(Vma vma)
    {
        Lock.EnterWrite();
        _vmas.Add(vma);
        Lock.ExitWrite();
    }

    /// <summary>Removes under the write side (<c>unlink_file_vma</c>).</summary>
    public void Unlink(Vma vma)
    {
        Lock.EnterWrite();
        _vmas.Remove(vma);
        Lock.ExitWrite();
    }
}
