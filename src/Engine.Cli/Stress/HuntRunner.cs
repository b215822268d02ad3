using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Invariants;

namespace Engine.Cli.Stress;

/// <summary>
/// <c>engine stress</c> with a targeted mix (<see cref="StressMix"/>): one <see cref="HuntWorker"/> per CPU on a few
/// shared pages, until the duration is up or the first failure (a worker's oracle, or a use-after-free the machine's
/// run-time check recorded), then the verdict with the time to failure. The end checks are the general run's: the
/// backing store (for the file mix), the invariants, and every frame back once the process has exited.
/// </summary>
internal static class HuntRunner
{
    /// <summary>
    /// Pages each mix works on: two for the TLB and torn-entry races (every CPU on the same entries), eight for lost-dirty
    /// (a zap of a range, as zoo entry 6), four for the pin-and-fork races (as zoo entry 5); for reclaim, two of each
    /// CPU's own mapping (its mprotect must not fault the others' stores).
    /// </summary>
    public static int Pages(StressMix mix) => mix switch
    {
        StressMix.LostDirty => 8,
        StressMix.PinFork or StressMix.ReadOnlyPinFork => 4,
        _ => 2,
    };

    public static int Run(StressOptions options, Stream? json)
    {
        var machine = new Machine(options.ToMachineOptions());
        using var scope = new MachineScope(machine);
        var initialFree = machine.FreeFrames;
        var process = machine.CreateProcess();
        var pages = Pages(options.Mix);
        BackingFile? file = null;
        ulong region;
        if (options.Mix == StressMix.LostDirty)
        {
            file = machine.CreateFile("hunt.dat", pages * 4096L);
            region = process.Mmap((ulong)pages * 4096, Prot.ReadWrite, MapFlags.Shared, file, 0);
        }
        else
        {
            region = process.Mmap((ulong)pages * 4096, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        }

        // The reclaim mix: a mapping of its own for each CPU, and kswapd after the mix's pages all along.
        var own = options.Mix == StressMix.Reclaim
            ? Enumerable.Range(0, options.Cpus).Select(_ => process.Mmap((ulong)pages * 4096, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous)).ToArray()
            : null;
        var target = new HuntTarget(options.Mix, machine, options.Frames, process, region, pages, file, own);
        var stop = 0;
        Func<bool> stopping = () => Volatile.Read(ref stop) != 0;
        var workers = Enumerable.Range(0, options.Cpus).Select(id => new HuntWorker(target, id, options.Seed, stopping)).ToArray();
        var perturb = options.Perturb;
        var threads = workers.Select((w, i) => new Thread(() => w.Run(perturb)) { IsBackground = true, Name = $"stress-cpu{i}" }).ToList();
        var kswapd = own is null ? null : new Kswapd(machine, options.Frames, stopping, relentless: pages);
        if (kswapd is not null)
        {
            threads.Add(new Thread(() => kswapd.Run(perturb, options.Seed, options.Cpus)) { IsBackground = true, Name = "kswapd" });
        }

        Console.WriteLine(StressRunner.Header(options));
        var clock = Stopwatch.StartNew();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        var failedAt = StressRunner.Watch(options, clock, machine, () => workers.Sum(w => w.Total), () => workers.Any(w => w.Failure is not null) || kswapd?.Failure is not null);
        Volatile.Write(ref stop, 1);
        var hung = threads.Where(t => !t.Join(TimeSpan.FromSeconds(30))).Select(t => t.Name).ToList();
        scope.Abandoned = hung.Count > 0;
        var seconds = clock.Elapsed.TotalSeconds;

        // What the machine recorded as it ran comes first: a use-after-free is the bug itself, where a worker's wrong
        // read is often only its consequence (a store into a freed frame that another CPU was given).
        // With FlushBeforeFree off, that is the bug; with another knob off, the worker's oracle names that knob's bug
        // and a use-after-free (if any) follows as its consequence.
        var failures = new List<string>();
        var stats = machine.Stats;
        var recorded = hung.Count == 0 ? Recorded(machine).ToList() : [];
        var found = workers.Select(w => w.Failure).Append(kswapd?.Failure).OfType<string>().ToList();
        var recordedFirst = options.Disabled.Contains(nameof(MachineOptions.FlushBeforeFree));
        failures.AddRange(recordedFirst ? recorded : found);
        failures.AddRange(recordedFirst ? found : recorded);
        failures.AddRange(hung.Select(name => $"{name} did not stop within 30 s"));
        if (hung.Count == 0)
        {
            if (file is not null)
            {
                machine.Writeback(file);
                failures.AddRange(workers.SelectMany((w, id) => Enumerable.Range(0, pages)
                    .Where(page => file.ReadStored(w.FileOffset(page)) != w.Expected(page))
                    .Select(page => $"lost store: CPU {id}'s last store (0x{w.Expected(page):x}) to file page {page} (0x{region + ((ulong)page * 4096) + ((ulong)id * 8):x}) is not in the backing store after the final writeback, which holds 0x{file.ReadStored(w.FileOffset(page)):x}")));
            }

            process.Dispose();
            failures.AddRange(StressRunner.Check(machine).Where(f => !failures.Any(known => known.Contains(f, StringComparison.Ordinal))));
            machine.EvictCleanPages(file);
            if (machine.FreeFrames != initialFree && failures.Count == 0)
            {
                failures.Add($"leak: {initialFree - machine.FreeFrames} frame(s) still allocated after the process exited");
            }
        }

        // The reclaim mix counts kswapd's pages swapped out among its operations: the race needs them.
        var names = HuntWorker.Operations(options.Mix).Concat(kswapd is null ? [] : ["pages swapped out"]).ToList();
        var totals = HuntWorker.Operations(options.Mix).Select((_, i) => workers.Sum(w => w.Count(i))).Concat(kswapd is null ? [] : [stats.SwapOuts]).ToArray();
        var vacuous = failures.Count == 0 && totals.Any(t => t == 0);
        if (vacuous)
        {
            failures.Add($"vacuous: the mix never ran {string.Join(" and ", names.Where((_, i) => totals[i] == 0))} (run longer)");
        }

        Console.WriteLine();
        Console.WriteLine("| operation | count | per second |");
        Console.WriteLine("|---|---:|---:|");
        for (var i = 0; i < names.Count; i++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {names[i]} | {totals[i]:N0} | {totals[i] / seconds:N0} |"));
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"faults: {stats.AnonymousFaults + stats.ZeroPageFaults + stats.WriteProtectFaults + stats.FileReadFaults + stats.FileSharedWriteFaults:N0}; COW: {stats.CowCopies:N0} copies, {stats.CowReuses:N0} reuses; TLB: {stats.TlbShootdowns:N0} shootdowns; fork copied {stats.ForkPinnedCopies:N0} pinned pages; {stats.PagesWrittenBack:N0} pages written back"));
        if (kswapd is not null)
        {
            Console.WriteLine(StressRunner.SwapLine(stats, seconds, kswapd));
        }

        Console.WriteLine(failures.Count == 0 ? "verdict: PASS (every read as expected, through the process and through pins, backing store as last stored, invariants hold, no leak)"
            : vacuous ? "verdict: NOTHING PROVED (every check held, but the mix never raced)"
            : failedAt is { } at ? string.Create(CultureInfo.InvariantCulture, $"verdict: FAIL after {at.TotalSeconds:0.00} s ({failures.Count} problem(s))")
            : $"verdict: FAIL at the end checks ({failures.Count} problem(s))");
        foreach (var failure in failures.Take(20))
        {
            Console.WriteLine("  " + failure);
        }

        if (vacuous)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stress: {options.Duration.TotalSeconds:0.###} s was too short for the {StressMixes.Name(options.Mix)} mix to run each of its operations: give a longer --duration."));
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
                Mix = StressMixes.Name(options.Mix),
                options.Perturb,
                Seconds = seconds,
                FailedAfterSeconds = failedAt?.TotalSeconds,
                Operations = names.Select((n, i) => (n, totals[i])).ToDictionary(p => p.n, p => p.Item2),
                Swap = StressRunner.SwapFigures(stats, seconds, kswapd),
                Passed = failures.Count == 0,
                Vacuous = vacuous,
                Failures = failures,
            };
            JsonSerializer.Serialize(json, results, new JsonSerializerOptions { WriteIndented = true });
            json.Flush();
        }

        return failures.Count == 0 ? ExitCode.Passed : vacuous ? ExitCode.Usage : ExitCode.Failed;
    }

    /// <summary>
    /// The use-after-frees the machine's run-time check recorded, in zoo entry 7's words (free-before-flush), with the
    /// CPU, address and pfn the check saw.
    /// </summary>
    private static IEnumerable<string> Recorded(Machine machine)
    {
        try
        {
            machine.CheckInvariants();
            return [];
        }
        catch (InvariantViolationException e)
        {
            return e.Violations.Where(v => v.Kind == ViolationKind.UseAfterFree && v.Cpu is not null).Take(3).Select(v => string.Create(CultureInfo.InvariantCulture,
                $"use-after-free through a stale TLB entry: CPU {v.Cpu}'s access to 0x{v.Address:x} reached pfn 0x{v.Pfn:x} after the zap freed it ({v.Message})"));
        }
    }
}
