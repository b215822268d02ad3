using System.Diagnostics;
using System.Globalization;
using Engine.Testing;

namespace Engine.Cli.Stress;

/// <summary>
/// What the workers of a targeted mix share: one process, and in it a few pages of anonymous memory or of a shared
/// file mapping. Few pages, so that every CPU's operations meet on the same entries.
/// </summary>
/// <param name="OwnRegions">For the reclaim mix, each CPU's own mapping of <paramref name="Pages"/> pages; else null.</param>
internal sealed record HuntTarget(StressMix Mix, Machine Machine, int Frames, Process Process, ulong Region, int Pages, BackingFile? File, IReadOnlyList<ulong>? OwnRegions = null);

/// <summary>
/// One real thread driving one <see cref="Cpu"/> in a targeted mix (<see cref="StressMix"/>): the operations of one
/// knob's race, as its zoo entry (src/BugZoo) stages it, in a loop on a few pages shared with every other CPU, with the
/// oracle that sees the bug. Each worker owns one word (at its own offset) in each page and remembers what it last
/// stored there. A failure is worded as the zoo words the bug, with the CPU, the address and the pfn where known.
/// </summary>
internal sealed class HuntWorker(HuntTarget target, int id, int seed, Func<bool> stopping)
{
    private const ulong Page = 4096;

    /// <summary>What the run counts, per mix: the racing operations (the vacuity guard wants each at least once).</summary>
    public static IReadOnlyList<string> Operations(StressMix mix) => mix switch
    {
        StressMix.Tlb => ["stores", "madvise", "reads after madvise"],
        StressMix.LostDirty => ["file stores", "zaps", "writebacks checked", "evictions"],
        StressMix.PinFork or StressMix.ReadOnlyPinFork => ["pins", "stores seen through a pin", "forks", "stores"],
        StressMix.TornPte => ["lockless reads", "present entries read", "madvise", "faults"],
        StressMix.Reclaim => ["stores", "direct-I/O completions", "mprotects"],
        _ => [],
    };

    private readonly ulong[] _expected = new ulong[target.Pages];
    private readonly bool[] _populated = new bool[target.Pages];
    private readonly long[] _counts = new long[Operations(target.Mix).Count];
    private readonly MachineInspector _inspector = target.Machine.Inspect();
    private ulong _serial;

    public long Count(int operation) => Interlocked.Read(ref _counts[operation]);

    public long Total => _counts.Sum();

    public string? Failure { get; private set; }

    /// <summary>This worker's word in file page <paramref name="page"/>, as a byte offset.</summary>
    public long FileOffset(int page) => (page * (long)Page) + (id * 8L);

    /// <summary>The word this worker last stored in page <paramref name="page"/> (read once the worker has stopped).</summary>
    public ulong Expected(int page) => _expected[page];

    public void Run(bool perturb)
    {
        if (perturb)
        {
            PerturbationHook.Attach(seed, id);
        }

        var cpu = target.Machine.Cpus[id];
        var random = new Random(seed * 1_000 + id);
        try
        {
            while (!stopping())
            {
                var page = random.Next(target.Pages);
                switch (target.Mix)
                {
                    case StressMix.Tlb:
                        Tlb(cpu, page, random);
                        break;
                    case StressMix.LostDirty:
                        LostDirty(cpu, page, random);
                        break;
                    case StressMix.PinFork:
                    case StressMix.ReadOnlyPinFork:
                        PinFork(cpu, page, random);
                        break;
                    case StressMix.TornPte:
                        TornPte(cpu, page, random);
                        break;
                    case StressMix.Reclaim:
                        Reclaim(cpu, page, random);
                        break;
                }
            }
        }
        catch (Exception e) when (e is not HuntFailure)
        {
            Failure = $"CPU {id}: {e.GetType().Name}: {e.Message}";
        }
        catch (HuntFailure e)
        {
            Failure = e.Message;
        }
        finally
        {
            PerturbationHook.Detach();
        }
    }

    private ulong Address(int page) => target.Region + ((ulong)page * Page) + ((ulong)id * 8);

    private ulong PageAt(int page) => target.Region + ((ulong)page * Page);

    private ulong NextValue() => ((ulong)(id + 1) << 48) | ++_serial;

    private void Note(int operation) => Interlocked.Increment(ref _counts[operation]);

    /// <summary>The frame the process maps at <paramref name="page"/> now, as text: a race may have changed it since.</summary>
    private string PfnText(int page)
    {
        try
        {
            var pfn = _inspector.PfnAt(target.Process, PageAt(page));
            return pfn < 0 ? "no frame mapped" : string.Create(CultureInfo.InvariantCulture, $"pfn 0x{pfn:x}");
        }
        catch (InvalidOperationException)
        {
            return "no frame mapped";
        }
    }

    /// <summary>
    /// FlushBeforeFree and NestedTlbFlush (zoo entry 7; MachineRaceTests.ConcurrentMadvise). Bursts of stores through
    /// the CPU's cached translation of a page, against madvise(DONTNEED) of the same page by the other CPUs. A store
    /// must never reach a freed frame (the machine's run-time check records a use-after-free, which the runner
    /// watches), and after this CPU's own madvise has returned its word must read 0: the old data means the call
    /// returned while a stale translation survived (a concurrent zap had cleared the entry and not yet flushed).
    /// Before that, a read returns the last store or, after another CPU's zap, 0.
    /// </summary>
    private void Tlb(Cpu cpu, int page, Random random)
    {
        if (random.Next(3) != 0)
        {
            for (var burst = 1 + random.Next(8); burst > 0; burst--)
            {
                var value = NextValue();
                cpu.Write(target.Process, Address(page), value);
                _expected[page] = value;
                Note(0);
                var read = cpu.Read(target.Process, Address(page));
                if (read != value && read != 0)
                {
                    throw Fail($"CPU {id} read 0x{read:x} at 0x{Address(page):x} ({PfnText(page)} now) right after storing 0x{value:x}: neither its store nor a zapped page's 0");
                }
            }

            return;
        }

        var before = PfnText(page);
        target.Process.MadviseDontNeed(PageAt(page), Page);
        Note(1);
        var after = cpu.Read(target.Process, Address(page));
        Note(2);
        if (after != 0)
        {
            throw Fail($"nested TLB flush missed: CPU {id} read the old data 0x{after:x} at 0x{Address(page):x} ({before} before the zap) after madvise(DONTNEED) returned: " +
                       "a concurrent zap had cleared the entry and not yet flushed, and this one returned while a stale translation survived the call");
        }

        _expected[page] = 0;
    }

    /// <summary>
    /// DelayRmap and FlushDirtyUnderPtl (zoo entry 6, lost-dirty). Bursts of stores through a dirty translation of a
    /// shared file page, against zaps of the whole range (madvise(DONTNEED), eight pages, so the window between the
    /// first entry cleared and the flush is as long as a real range's) and writeback, by the other CPUs. After its own
    /// writeback, the backing store must hold every last store of this CPU; after an eviction, the page refilled from
    /// the backing store must too.
    /// </summary>
    private void LostDirty(Cpu cpu, int page, Random random)
    {
        var file = target.File!;
        var roll = random.Next(20);
        if (roll < 10)
        {
            for (var burst = 1 + random.Next(8); burst > 0; burst--)
            {
                var value = NextValue();
                cpu.Write(target.Process, Address(page), value);
                _expected[page] = value;
                Note(0);
            }

            Expect(cpu.Read(target.Process, Address(page)), page, "read back from the shared file mapping");
        }
        else if (roll < 15)
        {
            target.Process.MadviseDontNeed(target.Region, (ulong)target.Pages * Page);
            Note(1);
        }
        else if (roll < 19)
        {
            target.Machine.Writeback(file);
            Note(2);
            for (var i = 0; i < target.Pages; i++)
            {
                var stored = file.ReadStored(FileOffset(i));
                if (stored != _expected[i])
                {
                    throw Fail($"lost store: CPU {id}'s last store (0x{_expected[i]:x}) at 0x{Address(i):x} (file page {i}, {PfnText(i)} now) is not in the backing store, which holds 0x{stored:x}, after its own writeback: " +
                               "a store through a dirty TLB entry was lost to writeback while the zap had not flushed");
                }
            }
        }
        else
        {
            target.Process.Msync(PageAt(page), Page);
            target.Machine.EvictCleanPages(file);
            Note(3);
            Expect(cpu.Read(target.Process, Address(page)), page, "read after eviction (refilled from the backing store)");
        }
    }

    private void Expect(ulong read, int page, string what)
    {
        if (read != _expected[page])
        {
            throw Fail($"lost store: CPU {id}'s last store (0x{_expected[page]:x}) at 0x{Address(page):x} (file page {page}, {PfnText(page)} now) is gone: {what} gives 0x{read:x}, and the backing store holds 0x{target.File!.ReadStored(FileOffset(page)):x}");
        }
    }

    /// <summary>
    /// GupFastForkSeq (zoo entry 5, pin-during-fork) or UnshareOnReadOnlyPin (zoo entry 9, ro-pin-unshare). Long-term
    /// pins (write pins through GUP-fast first, or read-only pins) of one to four pages of a small process, against
    /// forks of that process by the other CPUs, and stores to the same pages by every CPU (each to its own word, so
    /// every page is copied on write after each fork). While its pin is held, each of this CPU's stores must be read
    /// back through the pin: the pinned page must stay the one the process maps. A fork checks the child's view.
    /// </summary>
    private void PinFork(Cpu cpu, int page, Random random)
    {
        var roll = random.Next(20);
        if (roll < 9)
        {
            var pages = 1 + random.Next(target.Pages - page);
            var write = target.Mix == StressMix.PinFork;
            for (var i = page; i < page + pages; i++)
            {
                if (!_populated[i])
                {
                    Store(cpu, i);
                }
            }

            using var pin = cpu.PinUserPages(target.Process, PageAt(page), pages, GupFlags.LongTerm | (write ? GupFlags.Write : GupFlags.None));
            Note(0);
            for (var round = 0; round < 3; round++)
            {
                for (var i = 0; i < pin.Count; i++)
                {
                    var value = Store(cpu, page + i);
                    var seen = pin.Read(i, id);
                    if (seen != value)
                    {
                        var at = Address(page + i);
                        throw Fail(write
                            ? $"the pin holds 0x{seen:x} at 0x{at:x} (page {page + i}; the process maps {PfnText(page + i)} now), not CPU {id}'s store 0x{value:x}: the pinned page was shared with the child and the parent's write copied it away from the pin"
                            : $"the R/O pin of 0x{at:x} (page {page + i}; the process maps {PfnText(page + i)} now) reads 0x{seen:x}, not CPU {id}'s last store 0x{value:x}: it holds a page the parent no longer maps");
                    }

                    Note(1);
                }
            }
        }
        else if (roll < 12)
        {
            using var child = target.Process.Fork();
            Note(2);
            var read = cpu.Read(child, Address(page));
            if (read != _expected[page])
            {
                throw Fail($"CPU {id}'s child reads 0x{read:x} at 0x{Address(page):x}, not the parent's word at fork 0x{_expected[page]:x}");
            }

            cpu.Write(child, Address(page), NextValue());
        }
        else
        {
            Store(cpu, page);
            Note(3);
            var read = cpu.Read(target.Process, Address(page));
            if (read != _expected[page])
            {
                throw Fail($"CPU {id} read 0x{read:x} at 0x{Address(page):x} ({PfnText(page)} now), not its last store 0x{_expected[page]:x}");
            }
        }
    }

    private ulong Store(Cpu cpu, int page)
    {
        var value = NextValue();
        cpu.Write(target.Process, Address(page), value);
        _expected[page] = value;
        _populated[page] = true;
        return value;
    }

    /// <summary>
    /// LocklessPteRetry (zoo entry 3, torn-pte), on <see cref="PteLayout.SplitPae"/>. GUP-fast's lockless read of a
    /// page's entry (interrupts off, low half then high half, and with the retry the low half again), against
    /// madvise(DONTNEED) of the page (<c>ptep_get_and_clear</c>: low half first) and faults that map a new page
    /// (<c>set_pte</c>: high half first), by the other CPUs. Physical memory starts at pfn 0x100000, above 4 GiB, so
    /// every real entry's high half carries a pfn bit: a present entry whose pfn lies below pairs a present low half
    /// with the high half of a cleared entry.
    /// </summary>
    private void TornPte(Cpu cpu, int page, Random random)
    {
        var roll = random.Next(4);
        if (roll < 2)
        {
            for (var i = 0; i < 8; i++)
            {
                var entry = _inspector.ReadEntryLockless(cpu, target.Process, PageAt(page));
                Note(0);
                if (!entry.IsPresent)
                {
                    continue;
                }

                Note(1);
                var first = 1L << 20;
                if (entry.Pfn < first || entry.Pfn >= first + target.Frames)
                {
                    throw Fail($"torn read: CPU {id}'s lockless read at 0x{PageAt(page):x} saw a present entry for pfn 0x{entry.Pfn:x} (high half 0x{entry.High:x8}, low half 0x{entry.Low:x8}); " +
                               $"no such frame exists (physical memory is pfn 0x{first:x} to 0x{first + target.Frames - 1:x}): the read paired halves of two different entries");
                }
            }
        }
        else if (roll < 3)
        {
            target.Process.MadviseDontNeed(PageAt(page), Page);
            Note(2);
        }
        else
        {
            // Stores only, never a read fault: a read maps the shared zero page, whose entry is the same every time, and
            // a zap and a read fault between the reader's two reads of the low half bring back the very same low half
            // (A-B-A), which the retry cannot see — nor can the kernel's ptep_get_lockless; GUP-fast's re-check after
            // its grab rejects such a read. A write fault maps a new page, and its frame cannot be freed and come back
            // while this CPU reads with interrupts off (the zap's flush waits for them).
            Store(cpu, page);
            Note(3);
        }
    }

    /// <summary>
    /// FreezeBeforeDirtyTest (zoo entry 11, reclaim-freeze-dirty) and FlushTlbBatchedPending (zoo entry 12,
    /// batched-flush-mprotect), on two pages of this CPU's own mapping, while kswapd reclaims them again and again
    /// (a page stored to through a cached translation is not referenced as far as reclaim can tell: the A bit it
    /// cleared on its last pass is set again only by a page walk). Three operations, each with its oracle:
    /// <list type="bullet">
    /// <item>a burst of stores, each read back;</item>
    /// <item>a direct-I/O read into the page: a GUP reference with write access, held a moment (long enough for kswapd
    /// to unmap the page and write it to its slot), then the device's store through it and the reference dropped, which
    /// dirties the page; the process must then read the device's store: reclaim that tested dirty before it froze the
    /// refcount frees the page with its slot's older data;</item>
    /// <item>a store (the CPU's TLB holds a writable translation), mprotect(PROT_READ) of the mapping, and a store that
    /// must fault: reclaim may have cleared the entry and deferred its flush, and an mprotect that finds a swap entry
    /// must still flush that pending batch before it returns.</item>
    /// </list>
    /// </summary>
    private void Reclaim(Cpu cpu, int page, Random random)
    {
        var region = target.OwnRegions![id];
        var at = region + ((ulong)page * Page) + ((ulong)id * 8);
        var roll = random.Next(3);
        if (roll == 0)
        {
            for (var burst = 1 + random.Next(8); burst > 0; burst--)
            {
                var value = NextValue();
                cpu.Write(target.Process, at, value);
                _expected[page] = value;
                Note(0);
                var read = cpu.Read(target.Process, at);
                if (read != value)
                {
                    throw Fail($"lost store: CPU {id} read 0x{read:x} at 0x{at:x} ({OwnPfnText(region, page)} now) right after storing 0x{value:x}");
                }
            }
        }
        else if (roll == 1)
        {
            var data = NextValue();
            using (var io = cpu.GetUserPages(target.Process, region + ((ulong)page * Page), 1, GupFlags.Write))
            {
                // The I/O is in flight: kswapd may unmap the page, write it to its slot and try to free it meanwhile.
                // The device waits until kswapd has taken the entry, then a moment more, so that its store and the
                // reference's release fall while reclaim still works on the page.
                AwaitReclaim(region, page);
                Thread.SpinWait(random.Next(100));
                io.Write(0, id, data);
            }

            _expected[page] = data;
            Note(1);
            var read = cpu.Read(target.Process, at);
            if (read != data)
            {
                throw Fail($"lost I/O: CPU {id}'s process reads 0x{read:x} at 0x{at:x} ({OwnPfnText(region, page)} now), not what its direct I/O wrote (0x{data:x}): " +
                           "reclaim freed the page after the I/O dirtied it and dropped its reference (it tested dirty before freezing the refcount), and the swap-in read the slot's older data");
            }
        }
        else
        {
            // The store leaves a writable translation in this CPU's TLB; once kswapd has cleared the entry (its flush
            // deferred to the end of its batch), mprotect runs at once.
            var value = NextValue();
            cpu.Write(target.Process, at, value);
            _expected[page] = value;
            AwaitReclaim(region, page);
            target.Process.Mprotect(region, (ulong)target.Pages * Page, Prot.Read);
            Note(2);
            var stored = false;
            try
            {
                cpu.Write(target.Process, at, value + 1);
                stored = true;
            }
            catch (SegmentationFault fault) when (fault.Reason == SegmentationFaultReason.Protection)
            {
            }

            target.Process.Mprotect(region, (ulong)target.Pages * Page, Prot.ReadWrite);
            if (stored)
            {
                throw Fail($"stale TLB after mprotect: CPU {id}'s store to 0x{at:x} ({OwnPfnText(region, page)} now) succeeded after mprotect(PROT_READ) returned: " +
                           "reclaim had cleared the entry (or, under rule (d), write-protected it) and deferred its flush, and mprotect found nothing writable to change, flushed nothing and returned while the CPU's writable translation survived");
            }

            var read = cpu.Read(target.Process, at);
            if (read != value)
            {
                throw Fail($"lost store: CPU {id} read 0x{read:x} at 0x{at:x} ({OwnPfnText(region, page)} now) after mprotect R/O and back, not its store 0x{value:x}");
            }
        }
    }

    /// <summary>
    /// Waits until kswapd has cleared the entry of page <paramref name="page"/> of <paramref name="region"/> (it is no
    /// longer present), or 20 ms: the moment the reclaim races of this mix open their windows, microseconds away rather
    /// than anywhere in a pass of the clock. Yields while it waits, so that kswapd has the core.
    /// </summary>
    private void AwaitReclaim(ulong region, int page)
    {
        var entry = _inspector.LocateEntry(target.Process, region + ((ulong)page * Page));
        var deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 50);
        while (_inspector.ReadEntry(entry).IsPresent && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Yield();
        }
    }

    /// <summary>The frame the process maps at page <paramref name="page"/> of <paramref name="region"/> now, as text.</summary>
    private string OwnPfnText(ulong region, int page)
    {
        try
        {
            var entry = _inspector.EntryAt(target.Process, region + ((ulong)page * Page));
            return entry.IsPresent ? string.Create(CultureInfo.InvariantCulture, $"pfn 0x{entry.Pfn:x}") : entry.IsNone ? "no frame mapped" : "swapped out";
        }
        catch (InvalidOperationException)
        {
            return "no frame mapped";
        }
    }

    private static HuntFailure Fail(string message) => new(message);

    /// <summary>A failure of the oracle, worded for the verdict.</summary>
    private sealed class HuntFailure(string message) : Exception(message);
}
