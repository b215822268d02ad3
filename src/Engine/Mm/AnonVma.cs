using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// The kernel's <c>anon_vma</c>: what an anonymous page's <c>mapping</c> points to, so that an rmap walk can find every
/// VMA that may map the page. One is created for a VMA at its first anonymous page (<c>Engine.Rmap.AnonRmap.Prepare</c>);
/// fork gives each child VMA a new one whose <see cref="Parent"/> is the parent VMA's, all sharing the family's
/// <see cref="Root"/> and its lock. A VMA is listed in its own anon_vma and in every ancestor's (the
/// <c>anon_vma_chain</c> links), so a page created before a fork, whose mapping is an ancestor's anon_vma, is found in
/// every descendant that may still share it, and a page created after it only where it can be.
/// <para>
/// The kernel keeps the linked VMAs in an interval tree keyed by page offset; a list is enough for the families this
/// engine builds, and it keeps insertion order: a walk visits a VMA before any VMA forked from it (a split's tail
/// is appended, so it may come after VMAs forked earlier). The kernel also
/// reuses an anon_vma with no VMA of its own left (<c>anon_vma_clone</c>'s degree rule) to keep long fork chains
/// short; here each fork makes a new one and the collector frees what no page or VMA names any more (a stale
/// <c>mapping</c> read locklessly stays a valid object, as <c>SLAB_TYPESAFE_BY_RCU</c> guarantees in the kernel).
/// </para>
/// </summary>
internal sealed class AnonVma : IAnonMapping
{
    private readonly List<Vma> _vmas = new(1);

    private AnonVma(AnonVma? parent)
    {
        Parent = parent;
        Root = parent?.Root ?? this;
        Lock = parent?.Root.Lock ?? new ReaderWriterSemaphore();
        Generation = parent is null ? 0 : parent.Generation + 1;
    }

    /// <summary>The family's first anon_vma; its lock is the family's.</summary>
    public AnonVma Root { get; }

    /// <summary>The anon_vma of the VMA this one's VMA was forked from, or null for a root.</summary>
    public AnonVma? Parent { get; }

    /// <summary>Forks between the root and this anon_vma (diagnostics).</summary>
    public int Generation { get; }

    /// <summary>
    /// The root's <c>rwsem</c>: rmap walks hold it for read; linking and unlinking VMAs, and splitting a VMA that has
    /// an anon_vma, hold it for write. Lock order: mmap_lock, page lock, <c>i_mmap_rwsem</c>, this,
    /// <c>page_table_lock</c> or a PTL.
    /// </summary>
    public ReaderWriterSemaphore Lock { get; }

    /// <summary>The VMAs linked to this anon_vma (its own VMA and its descendants'). Read and changed under <see cref="Lock"/>.</summary>
    public IReadOnlyList<Vma> Vmas => _vmas;

    /// <summary>A new family (<c>anon_vma_alloc</c> for a VMA with no anon_vma).</summary>
    public static AnonVma NewRoot() => new(null);

    /// <summary>A child of this anon_vma in the same family (<c>anon_vma_fork</c>).</summary>
    public AnonVma NewChild() => new(this);

    /// <summary>Links <paramref name="vma"/> (<c>anon_vma_chain_link</c>). Enter with <see cref="Lock"/> held for write.</summary>
    public void Link(Vma vma)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(Lock, "the anon_vma lock");
        }

        _vmas.Add(vma);
        vma.AnonVmaChain.Add(this);
    }

    /// <summary>Unlinks <paramref name="vma"/> from this anon_vma only. Enter with <see cref="Lock"/> held for write.</summary>
    public void UnlinkOne(Vma vma)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(Lock, "the anon_vma lock");
        }

        _vmas.Remove(vma);
    }

    public override string ToString() => $"anon_vma gen {Generation} ({_vmas.Count} VMA(s))";
}
