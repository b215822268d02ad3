using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Sync;

namespace Engine;

/// <summary>
/// A process: an address space and the system calls on it. Process-level calls run on the calling thread, which is
/// not a CPU: its shootdowns target every CPU in the mm's cpumask. <see cref="Dispose"/> is exit.
/// </summary>
public sealed class Process : IDisposable
{
    /// <summary>The lowest user address.</summary>
    public const ulong UserStart = UserSpace.Start;

    /// <summary>One past the highest user address (47-bit user space, as on x86-64).</summary>
    public const ulong UserEnd = UserSpace.End;

    private const ulong MmapBase = 0x10_0000_0000;
    private const ulong PageMask = PhysicalMemory.PageSize - 1;

    [ThreadStatic]
    private static List<Vma>? t_unlinked;

    private readonly Machine _machine;
    private readonly MmStruct _mm;
    private int _exited;

    internal Process(Machine machine, MmStruct mm)
    {
        _machine = machine;
        _mm = mm;
    }

    /// <summary>The process id (also its address space's TLB tag).</summary>
    public int Pid => _mm.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => Atomic.Read(ref _exited) != 0;

    /// <summary>
    /// Maps <paramref name="length"/> bytes (rounded up to pages) of private anonymous memory and returns its address.
    /// </summary>
    public ulong Mmap(ulong length, Prot prot, MapFlags flags)
    {
        var mm = LiveMm();
        var size = CheckMmapLength(length, prot);
        if ((flags & MapFlags.Anonymous) == 0 || (flags & (MapFlags.Private | MapFlags.Shared)) != MapFlags.Private
            || (flags & ~(MapFlags.Private | MapFlags.Shared | MapFlags.Anonymous)) != 0)
        {
            throw new ArgumentException($"Mapping flags {flags}: anonymous memory is mapped Private | Anonymous (shared anonymous memory is not modelled); map a file with the overload that takes one.", nameof(flags));
        }

        return MapRegion(mm, size, prot, flags, file: null, pgOff: 0);
    }

    /// <summary>
    /// Maps <paramref name="length"/> bytes (rounded up to pages) of <paramref name="file"/> from
    /// <paramref name="offset"/> (page aligned), <see cref="MapFlags.Shared"/> (stores reach the file through the
    /// page cache) or <see cref="MapFlags.Private"/> (the first store to a page copies it), and returns its address.
    /// The mapped range must lie inside the file's pages.
    /// </summary>
    public ulong Mmap(ulong length, Prot prot, MapFlags flags, BackingFile file, long offset)
    {
        var mm = LiveMm();
        ArgumentNullException.ThrowIfNull(file);
        var size = CheckMmapLength(length, prot);
        if (file.Machine != _machine)
        {
            throw new ArgumentException($"{file} belongs to another machine.", nameof(file));
        }

        if ((flags & MapFlags.Anonymous) != 0 || (flags & ~(MapFlags.Private | MapFlags.Shared)) != 0
            || (flags & (MapFlags.Private | MapFlags.Shared)) is not (MapFlags.Private or MapFlags.Shared))
        {
            throw new ArgumentException($"Mapping flags {flags}: a file is mapped either Shared or Private, without Anonymous.", nameof(flags));
        }

        if (offset < 0 || (offset & (long)PageMask) != 0)
        {
            throw new ArgumentException($"Offset {offset} is negative or not page aligned.", nameof(offset));
        }

        var filePages = (long)file.Pages << PhysicalMemory.PageShift;
        if (offset > filePages || size > (ulong)(filePages - offset))
        {
            throw new ArgumentException($"[{offset}, +{length}) reaches beyond the {file.Pages} page(s) of {file}.", nameof(length));
        }

        return MapRegion(mm, size, prot, flags, file.Inode, offset >> PhysicalMemory.PageShift);
    }

    /// <summary>Unmaps [<paramref name="address"/>, +<paramref name="length"/>): its pages are released once no CPU can use them. Unmapped holes are fine.</summary>
    public void Munmap(ulong address, ulong length)
    {
        var mm = LiveMm();
        var (start, end) = CheckRange(address, length);
        ProtocolEvents.Mark("munmap", "pid {2}: [0x{1:x}, +{3} page(s))", address: start, value: Pid, value2: (long)((end - start) >> PhysicalMemory.PageShift));
        mm.MmapLock.EnterWrite();
        var downgraded = false;
        try
        {
            ThrowIfExited();
            _machine.Splitter.SplitAtBoundaries(mm, start, end, -1);
            SplitAt(mm, start);
            SplitAt(mm, end);
            // Remove the VMAs inside the range and find the gap they leave: page tables wholly inside it can go,
            // tables shared with a neighbour stay. (Plain loops: munmap allocates nothing.) The VMAs stay in their
            // file's rmap and their anon_vmas through the zap, so rmap walks (writeback's above all) can still find,
            // and wait for, the entries being zapped.
            ulong floor = 0, ceiling = UserEnd;
            var unlinked = t_unlinked ??= [];
            unlinked.Clear();
            for (var i = mm.Vmas.Count - 1; i >= 0; i--)
            {
                var vma = mm.Vmas[i];
                if (vma.Start >= start && vma.End <= end)
                {
                    mm.Vmas.RemoveAt(i);
                    unlinked.Add(vma);
                }
                else if (vma.End <= start)
                {
                    floor = Math.Max(floor, vma.End);
                }
                else if (vma.Start >= end)
                {
                    ceiling = Math.Min(ceiling, vma.Start);
                }
            }

            // As the kernel does since 4.20, zap under the read side: the range is unreachable (a fault there finds no
            // VMA), so faults elsewhere in the mm may run meanwhile.
            mm.MmapLock.DowngradeWrite();
            downgraded = true;
            _machine.Zapper.ZapRange(mm, start, end, -1);

            // free_pgtables: hide the VMAs from rmap walks before their tables go.
            foreach (var vma in unlinked)
            {
                UnlinkFromRmaps(vma);
            }

            unlinked.Clear();
            _machine.TableFreeing.FreeEmptyTables(mm, start, end, floor, ceiling, -1);
        }
        finally
        {
            if (downgraded)
            {
                mm.MmapLock.ExitRead();
            }
            else
            {
                mm.MmapLock.ExitWrite();
            }
        }
    }

    /// <summary>Changes the protection of [<paramref name="address"/>, +<paramref name="length"/>), which must be fully mapped.</summary>
    public void Mprotect(ulong address, ulong length, Prot prot)
    {
        var mm = LiveMm();
        var (start, end) = CheckRange(address, length);
        if (!Enum.IsDefined(prot))
        {
            throw new ArgumentException($"Unknown protection {prot}.", nameof(prot));
        }

        ProtocolEvents.Mark("mprotect", "pid {2}: [0x{1:x}, +{3} page(s))", address: start, value: Pid, value2: (long)((end - start) >> PhysicalMemory.PageShift));
        mm.MmapLock.EnterWrite();
        try
        {
            ThrowIfExited();
            if (!IsFullyMapped(mm, start, end))
            {
                throw new ArgumentException($"[0x{start:x}, 0x{end:x}) is not fully mapped (the kernel returns ENOMEM).", nameof(address));
            }

            _machine.Splitter.SplitAtBoundaries(mm, start, end, -1);
            SplitAt(mm, start);
            SplitAt(mm, end);
            foreach (var vma in mm.Vmas.Where(v => v.Start >= start && v.End <= end))
            {
                vma.Prot = prot;
            }

            _machine.Mprotect.ChangeProtection(mm, start, end, prot);
        }
        finally
        {
            mm.MmapLock.ExitWrite();
        }
    }

    /// <summary>
    /// <c>madvise(MADV_DONTNEED)</c>: drops the pages of the mapped parts of the range (they read as zero afterwards).
    /// Runs under the mmap_lock held for read, concurrently with faults and other zaps, as in Linux.
    /// </summary>
    public void MadviseDontNeed(ulong address, ulong length)
    {
        var mm = LiveMm();
        var (start, end) = CheckRange(address, length);
        ProtocolEvents.Mark("madvise", "pid {2}: MADV_DONTNEED [0x{1:x}, +{3} page(s))", address: start, value: Pid, value2: (long)((end - start) >> PhysicalMemory.PageShift));
        mm.MmapLock.EnterRead();
        try
        {
            ThrowIfExited();
            _machine.Splitter.SplitAtBoundaries(mm, start, end, -1);
            foreach (var vma in mm.Vmas)
            {
                var from = Math.Max(start, vma.Start);
                var to = Math.Min(end, vma.End);
                if (from < to)
                {
                    _machine.Zapper.ZapRange(mm, from, to, -1);
                }
            }
        }
        finally
        {
            mm.MmapLock.ExitRead();
        }
    }

    /// <summary>
    /// <c>madvise(MADV_PAGEOUT)</c>: reclaims now, whatever their age, the anonymous pages of the range that only this
    /// process maps (a page mapped by others too is left, as the kernel leaves it): each is written to a swap slot if
    /// it must be, and its entry becomes a swap entry that a later access faults back in. Pages that may be pinned,
    /// or that someone holds, are kept as reclaim keeps them; with no swap slot free nothing is paged out. Page-cache
    /// pages are left alone. Returns how many pages were freed (the kernel returns 0). Runs under the mmap_lock held
    /// for read, concurrently with faults.
    /// </summary>
    public int MadvisePageOut(ulong address, ulong length)
    {
        var mm = LiveMm();
        var (start, end) = CheckRange(address, length);
        ProtocolEvents.Mark("madvise", "pid {2}: MADV_PAGEOUT [0x{1:x}, +{3} page(s))", address: start, value: Pid, value2: (long)((end - start) >> PhysicalMemory.PageShift));
        mm.MmapLock.EnterRead();
        try
        {
            ThrowIfExited();
            var freed = 0;
            foreach (var vma in mm.Vmas)
            {
                var from = Math.Max(start, vma.Start);
                var to = Math.Min(end, vma.End);
                if (from < to)
                {
                    freed += _machine.Reclaimer.PageOut(mm, from, to, -1);
                }
            }

            return freed;
        }
        finally
        {
            mm.MmapLock.ExitRead();
        }
    }

    /// <summary>
    /// <c>msync(MS_SYNC)</c>: writes the file pages that [<paramref name="address"/>, +<paramref name="length"/>) maps
    /// shared back to their backing stores, and returns when they are there (private and anonymous parts have
    /// nothing to write). The range must be fully mapped.
    /// </summary>
    public void Msync(ulong address, ulong length)
    {
        var mm = LiveMm();
        var (start, end) = CheckRange(address, length);
        var ranges = new List<(Inode File, int First, int End)>();
        ProtocolEvents.Mark("msync", "pid {2}: MS_SYNC [0x{1:x}, +{3} page(s))", address: start, value: Pid, value2: (long)((end - start) >> PhysicalMemory.PageShift));
        mm.MmapLock.EnterRead();
        try
        {
            ThrowIfExited();
            if (!IsFullyMapped(mm, start, end))
            {
                throw new ArgumentException($"[0x{start:x}, 0x{end:x}) is not fully mapped (the kernel returns ENOMEM).", nameof(address));
            }

            foreach (var vma in mm.Vmas)
            {
                var from = Math.Max(start, vma.Start);
                var to = Math.Min(end, vma.End);
                if (from < to && vma.File is { } file && vma.IsShared)
                {
                    ranges.Add((file, (int)vma.LinearPageIndex(from), (int)vma.LinearPageIndex(to - 1) + 1));
                }
            }
        }
        finally
        {
            mm.MmapLock.ExitRead();
        }

        // As the kernel does, the file is written back without the mmap_lock (vfs_fsync_range may sleep on I/O).
        foreach (var (file, first, last) in ranges)
        {
            _machine.FileWriteback.Writeback(file, first, last);
        }
    }

    /// <summary>
    /// fork: a new process with a copy-on-write copy of this address space. Throws <see cref="OutOfFramesException"/>
    /// (with nothing left of the child) when the child's page tables cannot be allocated.
    /// </summary>
    public Process Fork()
    {
        var mm = LiveMm();
        var child = _machine.CreateProcess();
        mm.MmapLock.EnterWrite();
        try
        {
            ThrowIfExited();
            ProtocolEvents.Mark("fork", "pid {2} forks pid {3}", value: Pid, value2: child.Pid);
            _machine.Forker.DupMmap(mm, child._mm);
            return child;
        }
        catch
        {
            child.Dispose();
            throw;
        }
        finally
        {
            mm.MmapLock.ExitWrite();
        }
    }

    /// <summary>Exit: unmaps everything and frees the page tables. Idempotent.</summary>
    public void Dispose()
    {
        if (Atomic.CompareExchange(ref _exited, 1, 0) != 0)
        {
            return;
        }

        _mm.MmapLock.EnterWrite();
        try
        {
            ProtocolEvents.Mark("exit_mmap", "pid {2}: unmap everything", value: Pid);
            foreach (var vma in _mm.Vmas)
            {
                _machine.Zapper.ZapRange(_mm, vma.Start, vma.End, -1);
            }

            foreach (var vma in _mm.Vmas)
            {
                UnlinkFromRmaps(vma);
            }

            _mm.Vmas.Clear();
            _machine.TableFreeing.FreeAll(_mm, -1);
        }
        finally
        {
            _mm.MmapLock.ExitWrite();
        }

        _machine.OnExited(this);
    }

    /// <summary>The address space, or <see cref="ObjectDisposedException"/> after exit.</summary>
    internal MmStruct LiveMm()
    {
        ThrowIfExited();
        return _mm;
    }

    internal MmStruct Mm => _mm;

    /// <summary>The machine the process runs on.</summary>
    internal Machine Machine => _machine;

    private static ulong CheckMmapLength(ulong length, Prot prot)
    {
        if (length == 0 || length > UserEnd - UserStart)
        {
            throw new ArgumentException($"Length {length} is zero or larger than the address space.", nameof(length));
        }

        if (!Enum.IsDefined(prot))
        {
            throw new ArgumentException($"Unknown protection {prot}.", nameof(prot));
        }

        // Mappings are placed from MmapBase up: a length the area above it cannot hold is refused before any lock.
        if (length > UserEnd - MmapBase)
        {
            throw new OutOfAddressSpaceException($"Length {length:N0} is more than the {UserEnd - MmapBase:N0} bytes mappings can be placed in (mmap's ENOMEM); nothing was mapped.");
        }

        return (length + PageMask) & ~PageMask;
    }

    /// <summary>Inserts a new VMA of <paramref name="size"/> bytes at a free address (and into its file's rmap).</summary>
    private ulong MapRegion(MmStruct mm, ulong size, Prot prot, MapFlags flags, Inode? file, long pgOff)
    {
        mm.MmapLock.EnterWrite();
        try
        {
            ThrowIfExited();
            var start = FindGap(mm, size, AnonAlignment(size, file));
            var at = 0;
            while (at < mm.Vmas.Count && mm.Vmas[at].Start < start)
            {
                at++;
            }

            // An anonymous VMA's vm_pgoff is its start in pages: anonymous pages' indexes stay valid across splits and forks.
            var vma = new Vma(mm, start, start + size, prot, flags, file, file is null ? (long)(start >> PhysicalMemory.PageShift) : pgOff);
            mm.Vmas.Insert(at, vma);
            file?.Rmap.Link(vma);
            return start;
        }
        finally
        {
            mm.MmapLock.ExitWrite();
        }
    }

    private static (ulong Start, ulong End) CheckRange(ulong address, ulong length)
    {
        if ((address & PageMask) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not page aligned.", nameof(address));
        }

        if (length == 0)
        {
            throw new ArgumentException("Length is zero.", nameof(length));
        }

        var end = address + ((length + PageMask) & ~PageMask);
        if (length > UserEnd || end < address || address < UserStart || end > UserEnd)
        {
            throw new ArgumentException($"[0x{address:x}, +{length}) overflows or leaves the user address space [0x{UserStart:x}, 0x{UserEnd:x}).", nameof(length));
        }

        return (address, end);
    }

    /// <summary>
    /// Where an anonymous mapping of <paramref name="size"/> bytes starts: on a machine with large folios, at a folio
    /// boundary when it holds a folio or more (as <c>thp_get_unmapped_area</c> aligns mappings for PMD-sized THPs), so
    /// that its folio-sized ranges can be large folios; otherwise at any page.
    /// </summary>
    private ulong AnonAlignment(ulong size, Inode? file)
    {
        var folio = (ulong)PhysicalMemory.PageSize << _machine.Options.AnonFolioOrder;
        return file is null && _machine.Options.AnonFolioOrder != 0 && size >= folio ? folio : PhysicalMemory.PageSize;
    }

    private static ulong FindGap(MmStruct mm, ulong size, ulong alignment)
    {
        var candidate = MmapBase;
        foreach (var vma in mm.Vmas)
        {
            if (vma.End <= candidate)
            {
                continue;
            }

            if (vma.Start >= candidate + size)
            {
                break;
            }

            candidate = (vma.End + alignment - 1) & ~(alignment - 1);
        }

        if (candidate + size > UserEnd || candidate + size < candidate)
        {
            throw new OutOfAddressSpaceException($"No gap of {size:N0} bytes is left in the address space (mmap's ENOMEM); nothing was mapped.");
        }

        return candidate;
    }

    /// <summary>Splits the VMA containing <paramref name="address"/> so that a VMA starts there. Enter with the mmap_lock held for write.</summary>
    private static void SplitAt(MmStruct mm, ulong address)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(mm.MmapLock, "the mmap_lock");
        }

        var vma = mm.FindVma(address);
        if (vma is null || vma.Start == address)
        {
            return;
        }

        var tail = vma.Clone(address, vma.End);
        if (vma.File is null)
        {
            AnonRmap.Split(vma, tail, address);
        }
        else
        {
            // __split_vma under i_mmap_lock_write (then the anon_vma lock, for the private copies of a private file
            // mapping): an rmap walk sees either the whole VMA or both halves.
            vma.File.Rmap.Lock.EnterWrite();
            AnonRmap.Split(vma, tail, address);
            vma.File.Rmap.Add(tail);
            vma.File.Rmap.Lock.ExitWrite();
        }

        mm.Vmas.Insert(mm.Vmas.IndexOf(vma) + 1, tail);
    }

    /// <summary>Removes a VMA that is going away from its file's rmap and its anon_vmas (<c>unlink_file_vma</c>, <c>unlink_anon_vmas</c>).</summary>
    private static void UnlinkFromRmaps(Vma vma)
    {
        vma.File?.Rmap.Unlink(vma);
        AnonRmap.Unlink(vma);
    }

    private static bool IsFullyMapped(MmStruct mm, ulong start, ulong end)
    {
        var at = start;
        foreach (var vma in mm.Vmas)
        {
            if (vma.End <= at)
            {
                continue;
            }

            if (vma.Start > at)
            {
                return false;
            }

            at = vma.End;
            if (at >= end)
            {
                return true;
            }
        }

        return false;
    }

    private void ThrowIfExited() => ObjectDisposedException.ThrowIf(HasExited, this);
}
