using Engine.Cpus;
using Engine.AddressSpace;
using Engine.Faults;
using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;
using Engine.Sync;
using Engine.Zap;

namespace Engine;

/// <summary>
/// A simulated machine: physical frames and their memmap, CPUs with TLBs, and the processes whose page tables live in
/// those frames. Every shared word is read and written through <c>Engine.Sync</c>, so the same code runs on real
/// threads and under the systematic tester.
/// </summary>
public sealed class Machine : IDisposable
{
    private readonly Cpu[] _cpus;
    private readonly Spinlock _processesLock = new();
    private readonly List<Process> _processes = [];
    private readonly Spinlock _violationsLock = new();
    private readonly List<string> _violations = [];
    private readonly MmuGather[] _gathers;
    private readonly int[] _gatherInUse;
    private readonly Spinlock _filesLock = new();
    private BackingFile[] _files = [];
    private int _nextMmId;
    private int _disposed;

    /// <summary>Creates a machine; <paramref name="options"/> defaults to <see cref="MachineOptions"/>' defaults.</summary>
    public Machine(MachineOptions? options = null)
    {
        Options = options ?? new MachineOptions();
        Options.Validate();
        Memory = new PhysicalMemory(Options.BasePfn, Options.Frames);
        Memmap = new Memmap(Options.BasePfn, Options.Frames) { RefcountLimit = Options.RefcountLimit };

        // The zero page: the first frame, reserved, never freed, mapped read-only by special entries.
        ZeroPfn = Options.BasePfn;
        Memory.Zero(ZeroPfn);
        Memmap.Page(ZeroPfn).RefCount = 1;
        Memmap.Page(ZeroPfn).Flags = (int)(PageFlags.Reserved | PageFlags.Zero);
        Allocator = new FrameAllocator(Memmap, Memory, Options.Cpus, Options.PoisonFreedFrames, new HashSet<long> { ZeroPfn });
        Ptes = new PteAccess(Memory, Options.PteLayout, Options.LocklessPteRetry);
        Counters = new StatCounters(Options.Cpus);
        Tables = new PageTableSet(this);
        Ptes.StoreCheck = CheckPtlHeld;
        Faults = new FaultHandler(this);
        Zapper = new Zapper(this);
        Forker = new ForkCopier(this);
        Files = new FileWriteback(this);
        Gup = new Gup.GupEngine(this);
        _cpus = new Cpu[Options.Cpus];
        for (var i = 0; i < _cpus.Length; i++)
        {
            _cpus[i] = new Cpu(this, i);
        }

        _gathers = new MmuGather[Options.Cpus + 4];
        _gatherInUse = new int[_gathers.Length];
        for (var i = 0; i < _gathers.Length; i++)
        {
            _gathers[i] = new MmuGather(this);
        }
    }

    /// <summary>The CPUs.</summary>
    public IReadOnlyList<Cpu> Cpus => _cpus;

    /// <summary>Frames not allocated (exact at quiescence).</summary>
    public long FreeFrames => Allocator.FreeFrames;

    /// <summary>A snapshot of the counters.</summary>
    public MachineStats Stats => new(Counters, Allocator.RemoteDrains);

    internal MachineOptions Options { get; }

    internal PhysicalMemory Memory { get; }

    internal Memmap Memmap { get; }

    internal FrameAllocator Allocator { get; }

    internal PteAccess Ptes { get; }

    internal PageTableSet Tables { get; }

    internal FaultHandler Faults { get; }

    internal Zapper Zapper { get; }

    internal ForkCopier Forker { get; }

    internal StatCounters Counters { get; }

    internal long ZeroPfn { get; }

    /// <summary>Creates a process with an empty address space. Throws <see cref="OutOfFramesException"/> when no frame is left for its top-level table.</summary>
    public Process CreateProcess()
    {
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _disposed) != 0, this);
        var pgd = Tables.AllocateTable(-1);
        if (pgd < 0)
        {
            throw new OutOfFramesException("Out of frames for a new process's page table.");
        }

        var process = new Process(this, new MmStruct(Atomic.Increment(ref _nextMmId), pgd));
        _processesLock.Enter();
        _processes.Add(process);
        _processesLock.Exit();
        return process;
    }

    /// <summary>
    /// Creates a file of <paramref name="size"/> bytes whose backing store holds zeros. Its pages are cached on
    /// first access through a mapping.
    /// </summary>
    public BackingFile CreateFile(string name, long size)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _disposed) != 0, this);
        if (size <= 0 || size > (long)int.MaxValue * PhysicalMemory.PageSize / 8)
        {
            throw new ArgumentException($"File size {size} is not positive or too large.", nameof(size));
        }

        _filesLock.Enter();
        try
        {
            // Copy on write: FileById reads the table without the lock.
            var file = new BackingFile(this, _files.Length + 1, name, size);
            var table = new BackingFile[_files.Length + 1];
            _files.CopyTo(table, 0);
            table[^1] = file;
            Atomic.Write(ref _files, table);
            return file;
        }
        finally
        {
            _filesLock.Exit();
        }
    }

    /// <summary>
    /// Like <c>fsync</c>: writes every dirty page-cache page of <paramref name="file"/> to its backing store. Pages
    /// mapped writable are write-protected first (<c>folio_mkclean</c>), so a later store faults or walks and
    /// re-dirties the page. Runs on the calling thread, which is not a CPU.
    /// </summary>
    public void Writeback(BackingFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        CheckOwnFile(file);
        Files.Writeback(file);
    }

    /// <summary>
    /// Drops the clean, unmapped page-cache pages of <paramref name="file"/> (every file when null) that nobody
    /// else holds; returns how many were dropped.
    /// </summary>
    public int EvictCleanPages(BackingFile? file = null)
    {
        if (file is not null)
        {
            CheckOwnFile(file);
            return Files.EvictCleanPages([file]);
        }

        return Files.EvictCleanPages(AllFiles());
    }

    /// <summary>
    /// Checks every invariant; call at quiescence (no access or process call in progress). Throws
    /// <see cref="InvariantViolationException"/> listing every violation found.
    /// </summary>
    public void CheckInvariants()
    {
        // The checker runs at quiescence: under the systematic tester its reads are not scheduling points.
        List<string> violations;
        using (SchedulingHook.EnterQuiescent())
        {
            violations = InvariantChecker.Check(this, LiveProcesses());
        }

        _violationsLock.Enter();
        violations.InsertRange(0, _violations);
        _violationsLock.Exit();
        if (violations.Count > 0)
        {
            throw new InvariantViolationException(violations);
        }
    }

    /// <summary>Exits every process still alive.</summary>
    public void Dispose()
    {
        if (Atomic.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var process in LiveProcesses())
        {
            process.Dispose();
        }
    }

    /// <summary>Writeback and eviction.</summary>
    internal FileWriteback Files { get; }

    internal IReadOnlyList<BackingFile> AllFiles() => Atomic.Read(ref _files);

    /// <summary>The file whose pages carry <paramref name="id"/> in their <c>mapping</c> field.</summary>
    internal BackingFile FileById(long id) => Atomic.Read(ref _files)[id - 1];

    /// <summary>The file a page-cache page belongs to (<c>folio->mapping</c>). Enter holding the page somehow.</summary>
    internal BackingFile FileOf(long pfn) => FileById(Atomic.Read(ref Memmap.Page(pfn).Mapping));

    private void CheckOwnFile(BackingFile file)
    {
        if (file.Machine != this)
        {
            throw new ArgumentException($"{file} belongs to another machine.", nameof(file));
        }
    }

    internal IReadOnlyList<Process> LiveProcesses()
    {
        _processesLock.Enter();
        var copy = _processes.ToArray();
        _processesLock.Exit();
        return copy;
    }

    internal void OnExited(Process process)
    {
        _processesLock.Enter();
        _processes.Remove(process);
        _processesLock.Exit();
    }

    /// <summary><c>switch_mm</c>: the CPU may now cache the mm's translations.</summary>
    internal void SwitchMm(MmStruct mm, Cpu cpu) => mm.AddCpu(cpu.Id);

    /// <summary>
    /// <c>flush_tlb_mm_range</c>, a shootdown: no CPU uses a translation of [<paramref name="start"/>,
    /// <paramref name="end"/>) of <paramref name="mm"/> after this returns. Invalidate on every CPU of the mm's
    /// cpumask; wait until each target that was inside an access has left it (an access in flight may finish with
    /// the old translation, as a store in flight does on hardware, and a walk in flight may have filled a stale entry
    /// after the first invalidation); invalidate again. A CPU outside an access acknowledges at once. May be called
    /// with a PTL held: accesses never take locks, so the wait always ends.
    /// </summary>
    internal void FlushTlbRange(MmStruct mm, ulong start, ulong end, int cpu = -1)
    {
        var mask = mm.CpuMask;
        if (mask == 0 || end <= start)
        {
            return;
        }

        var startVpn = start >> PhysicalMemory.PageShift;
        var endVpn = (end + PhysicalMemory.PageSize - 1) >> PhysicalMemory.PageShift;
        var targets = 0;
        for (var bits = mask; bits != 0; bits &= bits - 1)
        {
            _cpus[System.Numerics.BitOperations.TrailingZeroCount(bits)].Tlb.InvalidateRange(mm.Id, startVpn, endVpn);
            targets++;
        }

        if (Options.GuardWalksInFlight)
        {
            for (var bits = mask; bits != 0; bits &= bits - 1)
            {
                WaitUntilOutsideAccess(_cpus[System.Numerics.BitOperations.TrailingZeroCount(bits)]);
            }

            for (var bits = mask; bits != 0; bits &= bits - 1)
            {
                _cpus[System.Numerics.BitOperations.TrailingZeroCount(bits)].Tlb.InvalidateRange(mm.Id, startVpn, endVpn);
            }
        }

        if (!Options.BroadcastTlbInvalidate)
        {
            // An IPI is taken only with interrupts on: a target in an IRQ-disabled section acknowledges when it leaves.
            for (var bits = mask; bits != 0; bits &= bits - 1)
            {
                WaitUntilIrqsOn(_cpus[System.Numerics.BitOperations.TrailingZeroCount(bits)]);
            }
        }

        Counters.Add(cpu, Stat.TlbShootdowns);
        Counters.Add(cpu, Stat.ShootdownTargets, targets);
    }

    /// <summary>
    /// A grace period for lockless walkers: returns once every CPU that was inside an access or an IRQ-disabled
    /// section has left it. A table unhooked before the call cannot be reached by a walker after it.
    /// </summary>
    internal void WaitForLocklessWalkers()
    {
        foreach (var cpu in _cpus)
        {
            WaitUntilOutsideAccess(cpu);
            WaitUntilIrqsOn(cpu);
        }
    }

    /// <summary>get_user_pages and pin_user_pages.</summary>
    internal Gup.GupEngine Gup { get; }

    /// <summary>
    /// <c>set_page_dirty_lock</c> on the page-cache pages of a write pin being released: what a device wrote through
    /// the pin must reach the file at the next writeback.
    /// </summary>
    internal void MarkPagesDirtyAfterGup(ReadOnlySpan<long> pfns)
    {
        foreach (var pfn in pfns)
        {
            if (pfn == ZeroPfn || Memmap.TestFlags(pfn, PageFlags.Anon))
            {
                continue;
            }

            Memmap.LockPage(pfn);
            FileOf(pfn).Cache.MarkDirty(pfn);
            Memmap.UnlockPage(pfn);
        }
    }

    /// <summary><c>put_page</c>: drops a reference and frees the frame when it was the last.</summary>
    internal void ReleasePage(int cpu, long pfn)
    {
        if (Memmap.PutPageTestZero(pfn))
        {
            FreeReleasedPage(cpu, pfn);
        }
    }

    /// <summary>Frees a frame whose last reference the caller just dropped.</summary>
    internal void FreeReleasedPage(int cpu, long pfn)
    {
        Allocator.FreePage(cpu, pfn);
        Counters.Add(cpu, Stat.PagesFreed);
    }

    /// <summary>Frees frames whose last reference the caller dropped, as one batch.</summary>
    internal void FreePages(int cpu, ReadOnlySpan<long> pfns)
    {
        if (pfns.Length > 0)
        {
            Allocator.FreePages(cpu, pfns);
            Counters.Add(cpu, Stat.PagesFreed, pfns.Length);
        }
    }

    /// <summary>Inside an access: the frame reached through a translation must be live, and not a page table.</summary>
    internal void CheckLiveFrame(int cpu, long pfn, ulong address)
    {
        if (Memmap.PageCount(pfn) > 0 && !Memmap.TestFlags(pfn, PageFlags.PageTable))
        {
            return;
        }

        Counters.Add(cpu, Stat.UseAfterFree);
        RecordViolation($"use-after-free: CPU {cpu} accessed 0x{address:x} through a stale translation to pfn 0x{pfn:x}, " +
                        (Memmap.PageCount(pfn) == 0 ? "a free frame" : "now a page table"));
    }

    /// <summary>Records a violation when an entry of <paramref name="table"/> is stored without its PTL held.</summary>
    internal void CheckPtlHeld(long table)
    {
        if (!Tables.Ptl(table).IsHeld)
        {
            RecordViolation($"PTE store in table 0x{table:x} without its PTL held");
        }
    }

    internal void RecordViolation(string violation)
    {
        _violationsLock.Enter();
        _violations.Add(violation);
        _violationsLock.Exit();
    }

    /// <summary>A pooled <see cref="MmuGather"/>; allocates only when more zaps run at once than the pool holds.</summary>
    internal MmuGather RentGather()
    {
        for (var i = 0; i < _gathers.Length; i++)
        {
            if (Atomic.Read(ref _gatherInUse[i]) == 0 && Atomic.CompareExchange(ref _gatherInUse[i], 1, 0) == 0)
            {
                return _gathers[i];
            }
        }

        return new MmuGather(this);
    }

    internal void ReturnGather(MmuGather gather)
    {
        var index = Array.IndexOf(_gathers, gather);
        if (index >= 0)
        {
            Atomic.Write(ref _gatherInUse[index], 0);
        }
    }

    private static void WaitUntilIrqsOn(Cpu cpu)
    {
        var sequence = cpu.IrqOffSequence;
        if ((sequence & 1) != 0)
        {
            Wait.Until((cpu, sequence), static s => s.cpu.IrqOffSequence != s.sequence);
        }
    }

    private static void WaitUntilOutsideAccess(Cpu cpu)
    {
        var sequence = cpu.AccessSequence;
        if ((sequence & 1) != 0)
        {
            Wait.Until((cpu, sequence), static s => s.cpu.AccessSequence != s.sequence);
        }
    }
}
