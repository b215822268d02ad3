using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Conformance;
using Engine.Sync;

namespace Engine.Cli.Stress;

/// <summary>
/// <c>engine stress</c>: one real worker thread per CPU on one machine for a fixed time, then the verdict: any wrong
/// read (through the process, a pin or a reference), exception, invariant violation or leaked frame fails the run, and
/// so does a run that never exercised the pin oracle.
/// </summary>
internal static class StressRunner
{
    /// <summary>
    /// Runs the mix for <see cref="StressOptions.Duration"/> and prints the verdict; writes the results as JSON to
    /// <paramref name="json"/> when given (the command opened it before the run, so a path that cannot be written never
    /// costs a run). Returns <see cref="ExitCode.Passed"/>, <see cref="ExitCode.Failed"/>, or <see cref="ExitCode.Usage"/>
    /// for a run that passed every check but was too short to exercise the pin oracle.
    /// </summary>
    public static int Run(StressOptions options, Stream? json)
    {
        // Perturbation: installed for this run only (a process that runs tests may have a scheduler's hook installed,
        // which is put back), and deactivated when the run is over.
        PerturbationHook? hook = null;
        ISchedulingHook? previous = null;
        if (options.Perturb)
        {
            previous = SchedulingHook.Current;
            hook = new PerturbationHook();
            SchedulingHook.Install(hook);
        }

        try
        {
            return options.Mix == StressMix.General ? RunGeneral(options, json) : HuntRunner.Run(options, json);
        }
        finally
        {
            hook?.Deactivate();
            if (previous is not null)
            {
                SchedulingHook.Install(previous);
            }
        }
    }

    /// <summary>The header line of a run.</summary>
    public static string Header(StressOptions options)
    {
        var knobs = (options.Disabled.Count == 0 ? "every protocol on" : "off: " + string.Join(", ", options.Disabled)) + (options.RuleD ? ", under rule (d)" : "");
        var mix = options.Mix == StressMix.General ? "general mix" : $"targeted mix {StressMixes.Name(options.Mix)}";
        var perturbation = options.Perturb ? PerturbationHook.Describe(options.Seed) : "no perturbation";
        var swap = options.EffectiveSwapSlots == 0 ? "no swap" : string.Create(CultureInfo.InvariantCulture, $"{options.EffectiveSwapSlots:N0} swap slots");
        var workingSet = options.WorkingSetPages is { } pages
            ? string.Create(CultureInfo.InvariantCulture, $", working set {pages:N0} pages ({options.WorkingSet:0.###}x memory: {options.RegionPages:N0} anonymous + {StressWorker.FilePages} file)")
            : "";
        var folios = options.AnonFolioOrder == 0 ? ""
            : string.Create(CultureInfo.InvariantCulture, $", folios of order {options.AnonFolioOrder} ({4 << options.AnonFolioOrder} KiB, {MapcountName(options.Mapcount)} mapcounts)");
        return $"engine stress: {options.Cpus} CPUs on {Environment.ProcessorCount} cores, {options.Frames} frames, {swap}{workingSet}{folios}, {options.Layout}, seed {options.Seed}, {options.Duration.TotalSeconds:0.#} s, {knobs}; {mix}, {perturbation}";
    }

    private static int RunGeneral(StressOptions options, Stream? json)
    {
        var settings = options.ToMachineOptions();
        var machine = new Machine(settings);
        using var scope = new MachineScope(machine);
        var initialFree = machine.FreeFrames;
        var shared = machine.CreateProcess();
        var pages = options.RegionPages;
        var region = shared.Mmap((ulong)pages * 4096UL, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var file = machine.CreateFile("stress.dat", StressWorker.FilePages * 4096L);
        var fileRegion = shared.Mmap(StressWorker.FilePages * 4096UL, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var stop = 0;
        Func<bool> stopping = () => Volatile.Read(ref stop) != 0;
        var workers = Enumerable.Range(0, options.Cpus)
            .Select(id => new StressWorker(machine, shared, region, pages, file, fileRegion, id, options.Seed * 1_000 + id, stopping, options.FolioPages, options.EffectiveSwapSlots > 0))
            .ToArray();
        var perturb = options.Perturb;
        // With a working set, so that the whole region is anonymous memory to swap; with large folios, so that its
        // aligned folio-sized ranges start as folios (a read first would map the zero page there, and the range falls
        // back to order-0 pages).
        var populate = options.WorkingSet is not null || options.AnonFolioOrder > 0;
        var threads = workers.Select((w, i) => new Thread(() => w.Run(perturb, populate)) { IsBackground = true, Name = $"stress-cpu{i}" }).ToList();

        // kswapd runs whenever there is swap to reclaim to: with a working set larger than memory it reclaims all along,
        // beside the workers' direct reclaim; otherwise memory never runs low and it only looks.
        var kswapd = options.EffectiveSwapSlots > 0 ? new Kswapd(machine, options.Frames, stopping) : null;
        if (kswapd is not null)
        {
            threads.Add(new Thread(() => kswapd.Run(perturb, options.Seed, options.Cpus)) { IsBackground = true, Name = "kswapd" });
        }

        Console.WriteLine(Header(options));
        var clock = Stopwatch.StartNew();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        var failedAt = Watch(options, clock, machine, () => workers.Sum(w => Enum.GetValues<StressOperation>().Sum(o => w.Count(o))),
            () => workers.Any(w => w.Failure is not null) || kswapd?.Failure is not null);
        Volatile.Write(ref stop, 1);
        var hung = threads.Where(t => !t.Join(TimeSpan.FromSeconds(30))).Select(t => t.Name).ToList();
        scope.Abandoned = hung.Count > 0;
        var seconds = clock.Elapsed.TotalSeconds;
        var failures = workers.Select(w => w.Failure).OfType<string>().ToList();
        if (kswapd?.Failure is { } reclaimFailure)
        {
            failures.Add(reclaimFailure);
        }

        failures.AddRange(hung.Select(name => $"{name} did not stop within 30 s"));
        var heldUntilReclaim = 0L;
        var stats = machine.Stats;
        if (hung.Count == 0)
        {
            failures.AddRange(Check(machine));

            // The backing-store oracle: after a final writeback, every worker's last store to each file page is on
            // the "disk"; once the process has gone, every cached page is clean and unmapped, so eviction empties
            // the cache and frees every frame.
            machine.Writeback(file);
            failures.AddRange(workers.SelectMany((w, id) => Enumerable.Range(0, StressWorker.FilePages)
                .Where(page => file.ReadStored(w.FileOffset(page)) != w.FileExpected(page))
                .Select(page => $"backing store: CPU {id}'s word of file page {page} holds 0x{file.ReadStored(w.FileOffset(page)):x}, not its last store 0x{w.FileExpected(page):x}")));
            shared.Dispose();
            failures.AddRange(Check(machine));
            machine.EvictCleanPages(file);
            if (machine.FreeFrames != initialFree)
            {
                // Under the tri-state or no mapcount, eviction and free_swap_cache trust a word that may say "mapped"
                // of a page nothing maps: reclaim, whose rmap walk is exact, must give those back; anything else leaked.
                var held = initialFree - machine.FreeFrames;
                if (CowSelftestCells.HeldOnlyUntilReclaim(machine, initialFree))
                {
                    heldUntilReclaim = held;
                }
                else
                {
                    failures.Add($"leak: {initialFree - machine.FreeFrames} frame(s) still allocated after every process exited");
                }
            }
        }

        // The vacuity guard: a run that took no long-term pin, read no process store through a pin or no device store
        // through the process has not exercised the pin oracle, whatever else it checked.
        // Alone, it is a mistake in the settings (exit code 2), not a failure of the machine.
        var pins = Enum.GetValues<StressPinEvent>().ToDictionary(e => e, e => workers.Sum(w => w.Count(e)));
        var vacuous = hung.Count == 0 && workers.All(w => w.Failure is null)
            && (pins[StressPinEvent.LongTermWritePin] + pins[StressPinEvent.LongTermReadOnlyPin] == 0
                || pins[StressPinEvent.ProcessStoreSeenByPin] == 0 || pins[StressPinEvent.DeviceStoreSeenByProcess] == 0);
        if (vacuous)
        {
            failures.Add("vacuous: no long-term pin was taken, or no store crossed between a pin and the process (run longer)");
        }

        // The same for a working set larger than memory: a run that swapped nothing out, or nothing back in, checked no
        // value through swap.
        var unswapped = hung.Count == 0 && workers.All(w => w.Failure is null) && kswapd?.Failure is null
            && options.WorkingSetPages > options.Frames && (stats.SwapOuts == 0 || stats.SwapIns == 0);
        if (unswapped)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"vacuous: the working set exceeds memory, but the run swapped {stats.SwapOuts:N0} page(s) out and {stats.SwapIns:N0} in (run longer)"));
        }

        // And for large folios: a run that mapped none, or split none, checked nothing that folios change.
        var unfolded = hung.Count == 0 && workers.All(w => w.Failure is null) && kswapd?.Failure is null
            && options.AnonFolioOrder > 0 && (stats.AnonFolioFaults == 0 || stats.FolioSplits == 0);
        if (unfolded)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"vacuous: folios are on, but the run mapped {stats.AnonFolioFaults:N0} large folio(s) and split {stats.FolioSplits:N0} (run longer)"));
        }

        var totals = Enum.GetValues<StressOperation>().Where(o => options.AnonFolioOrder > 0 || o != StressOperation.FolioRegion).ToDictionary(o => o, o => workers.Sum(w => w.Count(o)));
        var folioEvents = Enum.GetValues<StressFolioEvent>().ToDictionary(e => e, e => workers.Sum(w => w.Count(e)));
        var allOps = totals.Values.Sum();
        Console.WriteLine();
        Console.WriteLine("| operation | count | per second |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (operation, count) in totals)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {operation} | {count:N0} | {count / seconds:N0} |"));
        }

        var faults = stats.AnonymousFaults + stats.ZeroPageFaults + stats.WriteProtectFaults;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| all | {allOps:N0} | {allOps / seconds:N0} |"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"faults: {faults:N0} ({faults / seconds:N0}/s: {stats.AnonymousFaults:N0} anonymous, {stats.ZeroPageFaults:N0} zero-page, {stats.WriteProtectFaults:N0} write-protect, {stats.FaultRetries:N0} retried)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"COW: {stats.CowCopies:N0} copies, {stats.CowReuses:N0} reuses; TLB: {stats.TlbShootdowns:N0} shootdowns ({1000.0 * stats.TlbShootdowns / Math.Max(allOps, 1):0.00} per 1,000 ops, {(double)stats.ShootdownTargets / Math.Max(stats.TlbShootdowns, 1):0.00} CPUs each), {stats.TlbMisses:N0} misses; {stats.RemoteCacheDrains:N0} remote frame-cache drains"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"files: {stats.FileReadFaults:N0} read faults, {stats.FileSharedWriteFaults:N0} shared write faults, {stats.FilePrivateWriteFaults:N0} private copies; {stats.PageCacheFills:N0} cache fills, {stats.PagesWrittenBack:N0} pages written back, {stats.PagesEvicted:N0} evicted"));
        Console.WriteLine(SwapLine(stats, seconds, kswapd));
        if (options.AnonFolioOrder > 0)
        {
            Console.WriteLine(FolioLine(stats, seconds, folioEvents));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"GUP: {pins[StressPinEvent.ShortPin]:N0} short pins and {pins[StressPinEvent.FilePin]:N0} of file pages, {pins[StressPinEvent.LongTermWritePin]:N0} long-term write pins and {pins[StressPinEvent.LongTermReadOnlyPin]:N0} read-only held across operations, {pins[StressPinEvent.ScratchPin]:N0} pinned scratch pages zapped or mprotected, {pins[StressPinEvent.Reference]:N0} references; {pins[StressPinEvent.HandleRead]:N0} words read through them as expected, {pins[StressPinEvent.ProcessStoreSeenByPin]:N0} process stores seen through a pin, {pins[StressPinEvent.DeviceStoreSeenByProcess]:N0} device stores seen by the process; fork copied {stats.ForkPinnedCopies:N0} pinned pages"));
        // Out of swap: every failure was a worker's allocation that found memory full and the swap slots (all but a
        // few) in use, and the end checks found nothing wrong (slots count exactly the entries that name them). The
        // working set and what fork's children kept of it outgrew memory plus swap: the settings, not the machine.
        var slots = options.EffectiveSwapSlots;
        var starved = workers.Where(w => w.SwapSlotsInUseWhenOutOfFrames is { } used && used + Math.Max(16, slots / 100) >= slots).ToList();
        var outOfSwap = starved.Count > 0 && failures.Count == starved.Count;
        var onlyVacuous = (vacuous || unswapped || unfolded) && failures.Count == (vacuous ? 1 : 0) + (unswapped ? 1 : 0) + (unfolded ? 1 : 0);
        if (heldUntilReclaim > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{HeldUntilReclaimLine}{heldUntilReclaim:N0} frame(s) after every process exited, which eviction kept (the {options.Mapcount} word said they might be mapped) and reclaim gave back"));
        }

        Console.WriteLine(failures.Count == 0 ? "verdict: PASS (every read as expected, through the process and through pins and references, backing store as last stored, invariants hold, no leak)"
            : outOfSwap ? string.Create(CultureInfo.InvariantCulture, $"verdict: OUT OF SWAP after {failedAt?.TotalSeconds ?? seconds:0.0} s (every check held; {starved.Count} worker(s) found memory full and {slots:N0} of {slots:N0} swap slots in use, or nearly: the working set and what fork's children kept of it outgrew memory plus swap)")
            : onlyVacuous ? $"verdict: NOTHING PROVED (every check held, but the run never {string.Join(", nor ", NeverDid(vacuous, unswapped, unfolded))})"
            : failedAt is { } at ? string.Create(CultureInfo.InvariantCulture, $"verdict: FAIL after {at.TotalSeconds:0.0} s ({failures.Count} problem(s))")
            : $"verdict: FAIL ({failures.Count} problem(s))");
        foreach (var failure in failures.Take(20))
        {
            Console.WriteLine("  " + failure);
        }

        if (outOfSwap)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stress: swap ran out ({slots:N0} slots, all or nearly all in use when an allocation failed): give more --swap-slots (without it, this working set gets {options.DefaultSwapSlots:N0})."));
        }

        if (onlyVacuous)
        {
            var tooShort = vacuous
                ? "to exercise the pin oracle (no long-term pin, or no store crossed between a pin and the process)"
                : unswapped ? "to swap pages of the working set both out and in"
                : "to map a large folio and split one";
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stress: {options.Duration.TotalSeconds:0.###} s was too short {tooShort}: give a longer --duration."));
        }

        if (json is not null)
        {
            var results = new
            {
                options.Cpus,
                options.Frames,
                Layout = options.Layout.ToString(),
                options.Seed,
                options.Disabled,
                Proposal = options.RuleD ? "rule-d" : null,
                Mix = StressMixes.Name(options.Mix),
                options.Perturb,
                SwapSlots = options.EffectiveSwapSlots,
                WorkingSet = options.WorkingSet,
                WorkingSetPages = options.WorkingSetPages,
                RegionPages = options.RegionPages,
                Seconds = seconds,
                FailedAfterSeconds = failedAt?.TotalSeconds,
                Operations = totals.ToDictionary(p => p.Key.ToString(), p => p.Value),
                OperationsPerSecond = allOps / seconds,
                Faults = faults,
                FaultsPerSecond = faults / seconds,
                stats.CowCopies,
                stats.CowReuses,
                stats.TlbShootdowns,
                stats.ShootdownTargets,
                stats.RemoteCacheDrains,
                stats.FileReadFaults,
                stats.FileSharedWriteFaults,
                stats.FilePrivateWriteFaults,
                stats.PageCacheFills,
                stats.PagesWrittenBack,
                stats.PagesEvicted,
                Gup = pins.ToDictionary(p => p.Key.ToString(), p => p.Value),
                stats.ForkPinnedCopies,
                Swap = SwapFigures(stats, seconds, kswapd),
                Folios = options.AnonFolioOrder == 0 ? null : FolioFigures(options, stats, folioEvents),
                Passed = failures.Count == 0,
                Vacuous = onlyVacuous,
                OutOfSwap = outOfSwap,
                Failures = failures,
            };
            JsonSerializer.Serialize(json, results, new JsonSerializerOptions { WriteIndented = true });
            json.Flush();
        }

        return failures.Count == 0 ? ExitCode.Passed : onlyVacuous || outOfSwap ? ExitCode.Usage : ExitCode.Failed;
    }

    /// <summary>
    /// Waits out the run, printing progress once a second, and polling every 20 ms for a worker's failure or a
    /// use-after-free the machine recorded (its run-time check counts them as they happen). Returns when the first
    /// was seen, or null when the run lasted its duration.
    /// </summary>
    public static TimeSpan? Watch(StressOptions options, Stopwatch clock, Machine machine, Func<long> operations, Func<bool> failed)
    {
        var interactive = !Console.IsOutputRedirected;
        var nextLine = TimeSpan.FromSeconds(1);
        while (clock.Elapsed < options.Duration)
        {
            Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(20, Math.Max(1, (options.Duration - clock.Elapsed).TotalMilliseconds))));
            if (failed() || machine.Stats.UseAfterFree > 0)
            {
                var at = clock.Elapsed;
                if (interactive)
                {
                    Console.WriteLine();
                }

                return at;
            }

            if (clock.Elapsed >= nextLine || clock.Elapsed >= options.Duration)
            {
                nextLine = clock.Elapsed + TimeSpan.FromSeconds(1);
                var ops = operations();
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"  {clock.Elapsed.TotalSeconds,5:0.0} s  {ops,12:N0} ops  {ops / clock.Elapsed.TotalSeconds,12:N0} ops/s  {machine.FreeFrames,8} free frames");
                if (options.WorkingSet is not null)
                {
                    var stats = machine.Stats;
                    line += string.Create(CultureInfo.InvariantCulture, $"  {stats.SwapOuts,10:N0} swapped out  {stats.SwapIns,10:N0} in  {stats.SwapSlotsInUse,8:N0} slots in use");
                }

                Console.Write(interactive ? "\r" + line : line + Environment.NewLine);
            }
        }

        if (interactive)
        {
            Console.WriteLine();
        }

        return null;
    }

    /// <summary>The report's swap line: what reclaim (kswapd's and direct) swapped out, and the faults brought back.</summary>
    public static string SwapLine(MachineStats stats, double seconds, Kswapd? kswapd)
    {
        var daemon = kswapd is null ? "no kswapd (no swap)"
            : kswapd.Relentless ? string.Create(CultureInfo.InvariantCulture, $"kswapd reclaimed {kswapd.Wakeups:N0} times (no watermarks) and freed {kswapd.Freed:N0}; at most {kswapd.PeakSwapSlotsInUse:N0} swap slots in use")
            : string.Create(CultureInfo.InvariantCulture, $"kswapd woke {kswapd.Wakeups:N0} times below {kswapd.LowWatermark:N0} free frames and freed {kswapd.Freed:N0}; at most {kswapd.PeakSwapSlotsInUse:N0} swap slots in use");
        return string.Create(CultureInfo.InvariantCulture,
            $"swap: {stats.SwapOuts:N0} swap-outs ({stats.SwapOuts / seconds:N0}/s), {stats.SwapIns:N0} swap-ins ({stats.SwapIns / seconds:N0}/s), {stats.SwapCacheHits:N0} swap-cache hits; reclaim: {stats.ReclaimScans:N0} pages scanned, {stats.ReclaimKeptPinned:N0} kept (maybe pinned), {stats.SwapCacheFreesAfterCow:N0} freed from the swap cache after COW; {daemon}");
    }

    /// <summary>What a run that proved nothing never did, for its verdict.</summary>
    private static IEnumerable<string> NeverDid(bool vacuous, bool unswapped, bool unfolded)
    {
        if (vacuous)
        {
            yield return "exercised the pin oracle";
        }

        if (unswapped)
        {
            yield return "swapped pages both out and in";
        }

        if (unfolded)
        {
            yield return "mapped a large folio and split one";
        }
    }

    /// <summary>The command-line name of a mapcount scheme (<c>--mapcount</c>).</summary>
    public static string MapcountName(MapcountScheme scheme) => Conformance.MapcountSchemeNames.Of(scheme);

    /// <summary>How the output line begins that counts frames held until reclaim (a cost of the tri-state and of no mapcount, not a leak).</summary>
    public const string HeldUntilReclaimLine = "held until reclaim: ";

    /// <summary>
    /// The report's folio line: the machine's folio counters, and what the workers' folio regions did
    /// (<see cref="StressFolioEvent"/>).
    /// </summary>
    public static string FolioLine(MachineStats stats, double seconds, IReadOnlyDictionary<StressFolioEvent, long> events) => string.Create(CultureInfo.InvariantCulture,
        $"folios: {stats.AnonFolioFaults:N0} large-folio faults ({stats.AnonFolioFaults / seconds:N0}/s), {stats.AnonFolioFallbacks:N0} fallbacks to one page, {stats.LargeFolioReuses:N0} large-folio reuses, {stats.FolioSplits:N0} splits, {stats.FolioSplitsRefused:N0} refused; folio regions: {events[StressFolioEvent.PartialMunmap]:N0} munmaps, {events[StressFolioEvent.PartialDontNeed]:N0} madvise(DONTNEED)s and {events[StressFolioEvent.PartialMprotect]:N0} mprotects through a folio, {events[StressFolioEvent.Fork]:N0} forks, {events[StressFolioEvent.PinAcrossSplit]:N0} pins and references held across a munmap through their folio, {events[StressFolioEvent.PageOut]:N0} madvise(PAGEOUT)s");

    /// <summary>The folio figures of the JSON results (null with folios off).</summary>
    public static object FolioFigures(StressOptions options, MachineStats stats, IReadOnlyDictionary<StressFolioEvent, long> events) => new
    {
        options.AnonFolioOrder,
        Mapcount = MapcountName(options.Mapcount),
        stats.AnonFolioFaults,
        stats.AnonFolioFallbacks,
        stats.LargeFolioReuses,
        stats.FolioSplits,
        stats.FolioSplitsRefused,
        Regions = events.ToDictionary(p => p.Key.ToString(), p => p.Value),
    };

    /// <summary>The swap figures of the JSON results.</summary>
    public static object SwapFigures(MachineStats stats, double seconds, Kswapd? kswapd) => new
    {
        stats.SwapOuts,
        SwapOutsPerSecond = stats.SwapOuts / seconds,
        stats.SwapIns,
        SwapInsPerSecond = stats.SwapIns / seconds,
        stats.SwapCacheHits,
        stats.ReclaimScans,
        stats.ReclaimKeptPinned,
        stats.SwapCacheFreesAfterCow,
        KswapdWakeups = kswapd?.Wakeups ?? 0,
        KswapdFreed = kswapd?.Freed ?? 0,
        PeakSwapSlotsInUse = kswapd?.PeakSwapSlotsInUse ?? 0,
    };

    /// <summary>The invariant checker's report, worded as a list of problems (empty when every invariant holds).</summary>
    public static IEnumerable<string> Check(Machine machine)
    {
        try
        {
            machine.CheckInvariants();
            return [];
        }
        catch (InvariantViolationException e)
        {
            return e.Violations.Select(v => v.Message);
        }
    }
}
