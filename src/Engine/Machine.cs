using Engine.AddressSpace;
using Engine.Cpus;
using Engine.Faults;
using Engine.Files;
using Engine.Folios;
using Engine.Gup;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Reclaim;
using Engine.Policy;
using Engine.Rmap;
using Engine.Stats;
using Engine.Swap;
using Engine.Sync;
using Engine.Truncate;
using Engine.Writeback;
using Engine.Zap;

namespace Engine;

/// <summary>
/// A simulated machine: physical frames and their memmap, CPUs with TLBs, and the processes whose page tables live in
/// those frames. Every shared word is read and written through <c>Engine.Sync</c>, so the same code runs on real
/// threads and under the systematic tester.
/// <para>
/// The machine is the composition root: it builds each subsystem once, bottom-up, handing each the collaborators it
/// uses (docs/design.md draws the graph), and is the public façade with <see cref="Process"/>, <see cref="Cpu"/> and
/// <see cref="BackingFile"/>. It does no protocol work of its own.
/// </para>
/// </summary>
public sealed class Machine : IDisposable
{
    private readonly Cpu[] _cpus;
    private readonly ProcessTable _processes = new();
    private int _nextMmId;
    private int _disposed;

    /// <summary>Creates a machine; <paramref name="options"/> defaults to <see cref="MachineOptions"/>' defaults.</summary>
    public Machine(MachineOptions? options = null)
    {
        Options = options ?? new MachineOptions();
        Options.Validate();
        Generation = KernelGeneration.From(Options);
        Counters = new StatCounters(Options.Cpus);
        Violations = new ViolationLog();

        // Memory. The zero page is the first frame: reserved, never freed, mapped read-only by special entries.
        Memory = new PhysicalMemory(Options.BasePfn, Options.Frames);
        Memmap = new Memmap(Options.BasePfn, Options.Frames, Options.AnonFolioOrder, Options.Mapcount) { RefcountLimit = Options.RefcountLimit, LargeMapcountLockOn = Options.LargeMapcountLock };
        ZeroPfn = Options.BasePfn;
        Memory.Zero(ZeroPfn);
        Memmap.Reserve(ZeroPfn, PageFlags.Zero);
        Allocator = new FrameAllocator(Memmap, Memory, Options.Cpus, Options.PoisonFreedFrames, new HashSet<long> { ZeroPfn }, folioOrder: Options.AnonFolioOrder);
        Pages = new PageRelease(Memmap, Allocator, Counters);

        // Page tables and CPUs.
        var ptls = new PageTableLocks(Options.BasePfn, Options.Frames);
        Ptes = new PteAccess(Memory, ptls, Violations, Options.PteLayout, Options.LocklessPteRetry);
        Tables = new PageTableSet(Memory, Memmap, Allocator, ptls, Counters);
        var contexts = new CpuContext[Options.Cpus];
        _cpus = new Cpu[Options.Cpus];
        for (var i = 0; i < _cpus.Length; i++)
        {
            contexts[i] = new CpuContext(i);
            _cpus[i] = new Cpu(this, contexts[i]);
        }

        Shootdown = new Shootdown(contexts, Counters, Options.GuardWalksInFlight, Options.BroadcastTlbInvalidate);
        Mmu = new Mmu(Memory, Memmap, Tables, Ptes, Counters, Violations);

        // Files and swap, reverse maps, and the protocols above them.
        Files = new FileTable(Memmap, Memory, Allocator, Pages, Counters);
        SwapDevice = new SwapDevice(Options.EffectiveSwapSlots);
        SwapCache = new SwapCache(Memmap, SwapDevice);
        var anonRmap = new AnonRmap(Memmap, Counters, Options.AnonVmaPrepareRecheck);
        Rmap = new RmapWalk(Memmap, Files, Tables, Ptes);
        var gathers = new GatherPool(Options.Cpus + 4, () => new MmuGather(Memmap, Pages, Shootdown, SwapCache, Options.FlushBeforeFree, Options.NestedTlbFlush));
        Zapper = new Zapper(Tables, Ptes, Memmap, Files, SwapCache, Pages, Shootdown, gathers, Options.FlushDirtyUnderPtl, Options.DelayRmap, Options.FlushTlbBatchedPending);
        TableFreeing = new PageTableFreeing(Tables, Shootdown, Options.GracePeriodBeforeTableFree);
        Faults = new FaultHandler(Memory, Memmap, Allocator, Pages, Tables, Ptes, Shootdown, anonRmap, Generation, Counters, SwapCache, ZeroPfn, SwapInKnobs.From(Options), Options.FaultRechecksTruncation, Options.ReadFaultLocksPage);
        Gup = new GupEngine(Memmap, Pages, Tables, Ptes, Faults, Files, Generation, Counters, GupKnobs.From(Options), ZeroPfn);
        Forker = new ForkCopier(Memory, Memmap, Allocator, Tables, Ptes, Shootdown, anonRmap, Generation, Counters, Pages, SwapDevice, ForkKnobs.From(Options));
        Mprotect = new ProtectionChange(Memmap, Tables, Ptes, Shootdown, Generation, Options.FlushTlbBatchedPending);
        FileWriteback = new FileWriteback(Memory, Memmap, Pages, Tables, Ptes, Shootdown, Rmap, Counters, Options.SyncWritebackWaits);
        Splitter = new FolioSplitter(Memmap, Tables, Ptes, Pages, Counters);
        Reclaimer = new Reclaimer(Memory, Memmap, Tables, Ptes, Shootdown, Rmap, Files, FileWriteback, SwapCache, Pages, Counters, Options.FreezeBeforeDirtyTest, Options.ReclaimSkipsMaybePinned, Options.WriteProtectBeforeSwap, Generation.TracksAnonExclusive, Splitter);
        Truncation = new Truncation(Memmap, Pages, Zapper, Reclaimer, Counters);
        // Direct reclaim: the one call up the layers, through the allocator's interface. Without swap it still drops
        // page-cache pages.
        Allocator.DirectReclaim = Reclaimer;
        Invariants = MachineInvariants.For(this, contexts);
    }

    /// <summary>The CPUs.</summary>
    public IReadOnlyList<Cpu> Cpus => _cpus;

    /// <summary>Frames not allocated (exact at quiescence).</summary>
    public long FreeFrames => Allocator.FreeFrames;

    /// <summary>A snapshot of the counters.</summary>
    public MachineStats Stats => new(Counters, Allocator.RemoteDrains, SwapDevice.UsedSlots);

    /// <summary>Creates a process with an empty address space. Throws <see cref="OutOfFramesException"/> when no frame is left for its top-level table.</summary>
    public Process CreateProcess()
    {
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _disposed) != 0, this);
        var pgd = Tables.AllocateTable(-1);
        if (pgd < 0)
        {
            throw new OutOfFramesException("Out of frames for a new process's page table.");
        }

        return _processes.Add(new Process(this, new MmStruct(Atomic.Increment(ref _nextMmId), pgd)));
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

        return new BackingFile(this, Files.Create(name, size));
    }

    /// <summary>
    /// Reclaims memory until <paramref name="frames"/> frames were freed or nothing more can be freed (two sweeps of the
    /// frames found nothing), and returns how many were freed: anonymous pages not accessed since reclaim last looked
    /// are written to swap slots and their entries replaced by swap entries, which a later access faults back in;
    /// page-cache pages are unmapped, written back if dirty and dropped, and a later access reads them from the file.
    /// Pages that may be pinned are kept; with no swap slot free (or <see cref="MachineOptions.SwapSlots"/> 0) nothing
    /// anonymous can be freed. Callable from any thread, like kswapd; runs on the calling thread, which is not a CPU.
    /// </summary>
    public int Reclaim(int frames)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frames);
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _disposed) != 0, this);
        return Reclaimer.Reclaim(frames, -1);
    }

    /// <summary>
    /// Like <c>fsync</c>: writes every dirty page-cache page of <paramref name="file"/> to its backing store. Pages
    /// mapped writable are write-protected first (<c>folio_mkclean</c>), so a later store faults or walks and
    /// re-dirties the page. Runs on the calling thread, which is not a CPU.
    /// </summary>
    public void Writeback(BackingFile file) => FileWriteback.Writeback(BackingFile.InodeOf(file, this));

    /// <summary>
    /// Like <c>ftruncate</c>: makes <paramref name="file"/> <paramref name="length"/> bytes long, and returns how many
    /// cached pages it removed.
    /// <para>
    /// Shrinking: the new size is published first, so from then on an access through a mapping to a page at or beyond
    /// the new end faults with <see cref="SegmentationFaultReason.BeyondEndOfFile"/> (the kernel's SIGBUS); then every
    /// page wholly beyond the end is unmapped from every process (shared mappings, and private ones, whose copies of
    /// those pages are discarded too, as Linux's <c>truncate_pagecache</c> does with <c>even_cows</c>), removed from
    /// the page cache whether dirty or clean (what was written there and not yet written back is lost, as with
    /// truncate(2)) and freed once nothing else holds it; the backing store beyond the end is dropped. A length that
    /// is not page aligned keeps the last page, cached and mapped, and zeroes its bytes beyond the end, in the page
    /// and in the backing store, as the kernel does: those bytes read as zeros if the file grows again.
    /// </para>
    /// <para>
    /// Growing: allowed up to the file's size at creation (<see cref="BackingFile.MaxSize"/>: the page cache and the
    /// backing store are sized once, the model's <c>s_maxbytes</c>); the new part reads as zeros, including the part of
    /// the old last page beyond the old end. Mappings are untouched either way (a mapping may reach beyond the end;
    /// its pages there fault until the file grows back).
    /// </para>
    /// Throws <see cref="ArgumentException"/> for a file of another machine and <see cref="ArgumentOutOfRangeException"/>
    /// for a negative length or one beyond the maximum; nothing is changed then. Runs on the calling thread, which is
    /// not a CPU, concurrently with accesses, faults, writeback and reclaim; truncations of one file run one at a time.
    /// </summary>
    public int Truncate(BackingFile file, long length)
    {
        var inode = BackingFile.InodeOf(file, this);
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _disposed) != 0, this);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > inode.Store.MaxSize)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{file} can be at most {inode.Store.MaxSize} bytes long (its size at creation).");
        }

        return Truncation.Truncate(inode, length, -1);
    }

    /// <summary>
    /// Drops the clean, unmapped page-cache pages of <paramref name="file"/> (every file when null) that nobody
    /// else holds; returns how many were dropped.
    /// </summary>
    public int EvictCleanPages(BackingFile? file = null)
        => FileWriteback.EvictCleanPages(file is null ? Files.All : [BackingFile.InodeOf(file, this)]);

    /// <summary>
    /// Checks every invariant; call at quiescence (no access or process call in progress). Throws
    /// <see cref="InvariantViolationException"/> listing every violation found, those recorded while the machine ran
    /// (a use-after-free, a PTE stored without its PTL, a broken lock contract) first.
    /// </summary>
    public void CheckInvariants()
    {
        var violations = Violations.Snapshot();
        using (SchedulingHook.EnterQuiescent())
        {
            // The list of processes too is read at quiescence: no scheduling points in the check.
            violations.AddRange(Invariants.Check(LiveProcesses()));
        }
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

    // The subsystems, for the façade types (Process, Cpu, BackingFile, PinnedPages) and the tests.
    internal MachineOptions Options { get; }
    internal KernelGeneration Generation { get; }
    internal StatCounters Counters { get; }
    internal ViolationLog Violations { get; }
    internal PhysicalMemory Memory { get; }
    internal Memmap Memmap { get; }
    internal FrameAllocator Allocator { get; }
    internal PageRelease Pages { get; }
    /// <summary>Reclaim of anonymous pages to swap.</summary>
    internal Reclaimer Reclaimer { get; }

    internal FolioSplitter Splitter { get; }

    /// <summary>The swap device (<see cref="MachineOptions.SwapSlots"/> slots).</summary>
    internal SwapDevice SwapDevice { get; }

    /// <summary>The swap cache of <see cref="SwapDevice"/>'s slots.</summary>
    internal SwapCache SwapCache { get; }

    internal long ZeroPfn { get; }
    internal PteAccess Ptes { get; }
    internal PageTableSet Tables { get; }
    internal Shootdown Shootdown { get; }
    internal Mmu Mmu { get; }
    internal FileTable Files { get; }
    internal RmapWalk Rmap { get; }
    internal Zapper Zapper { get; }
    internal PageTableFreeing TableFreeing { get; }
    internal FaultHandler Faults { get; }
    internal GupEngine Gup { get; }
    internal ForkCopier Forker { get; }
    internal ProtectionChange Mprotect { get; }
    internal FileWriteback FileWriteback { get; }
    internal Truncation Truncation { get; }
    internal MachineInvariants Invariants { get; }

    internal IReadOnlyList<Process> LiveProcesses() => _processes.Live();

    internal void OnExited(Process process) => _processes.Remove(process);
}
