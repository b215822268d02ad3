using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using BugZoo;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine zoo</c>: runs the bug zoo (docs/bug-zoo.md) under the chosen scheduler (ours by default, or Coyote). For
/// each entry, the scenario with its knob off for seeds 0..n−1, schedules to the first bug (which must be that entry's
/// bug), and the scenario with the fix for the full budget, which must pass and meet every interleaving the entry
/// names. Prints the table; exit code 1 when any claim fails. <c>--report</c> prints one entry's full failure report.
/// <c>--proposal</c> runs every entry under a design no kernel shipped (<see cref="ZooProposal"/>) and tells which bugs it
/// closes.
/// </summary>
internal static class ZooCommand
{
    public static Command Create()
    {
        var seeds = Inputs.Integer("--seeds", "Seeds per entry for the buggy scenario (0..n-1).", 10, 1);
        var budget = Inputs.Integer("--budget", "Schedules allowed to find each bug, per seed.", 1000, 1);
        var fixedIterations = Inputs.Integer("--fixed-iterations", "Schedules the fixed scenario must pass.", 10_000, 1);
        var parallel = Inputs.OptionalInteger("--parallel", $"Schedules of the fixed scenario run at once, 1 to {CommonOptions.MaxParallel} (built-in scheduler only; default: the number of cores).", 1, CommonOptions.MaxParallel, "-p");
        var only = new Option<string?>("--entry") { Description = "Run only this entry (number or name)." };
        var report = new Option<bool>("--report") { Description = "With --entry: print the failure report of seed 0 (with how to replay it) instead of the table." };
        var traces = new Option<string?>("--trace-dir") { Description = "With --report: where the JSON trace is written (default: the system temp folder); checked before the run." };
        var proposalOption = new Option<string?>("--proposal")
        {
            Description = "Run every entry under a design no kernel shipped, to see which races it closes: " +
                          string.Join(", ", ZooProposals.Named.Select(n => n.Name)) + " (seed 001's rule (d): reclaim write-protects a page before the swap cache). " +
                          "The buggy scenarios' results are findings, not claims; the fixed ones must still pass.",
        };
        var scheduling = new SchedulerOptions();
        var reporting = new ReportOptions();
        var command = new Command("zoo", "Reproduce the bug zoo: each historical mm race found with its knob off and absent with the fix, by our scheduler or Coyote. " +
                                         "Exit codes: 0 every claim held (with --report: the entry's bug was found); 1 a claim failed (a bug not found, the wrong bug, or a failure with the fix); 2 a wrong option.");
        command.Options.Add(seeds);
        command.Options.Add(budget);
        command.Options.Add(fixedIterations);
        command.Options.Add(parallel);
        command.Options.Add(only);
        command.Options.Add(report);
        command.Options.Add(traces);
        command.Options.Add(proposalOption);
        reporting.AddTo(command);
        scheduling.AddTo(command);
        command.SetAction(result =>
        {
            // Every option is checked, whether or not this run uses it, before any schedule runs.
            var scheduler = scheduling.Read(result);
            var entryName = result.GetValue(only);
            var entries = entryName is null ? BugZooCatalog.All : [FindEntry(entryName)];
            var lanes = result.GetValue(parallel) ?? (scheduler.Name == BuiltinScheduler.SchedulerName ? Math.Min(Environment.ProcessorCount, CommonOptions.MaxParallel) : 1);
            if (lanes > 1 && scheduler.Name != BuiltinScheduler.SchedulerName)
            {
                throw new UsageException("--parallel applies to the built-in scheduler only: Coyote runs one schedule at a time.");
            }

            var proposal = ReadProposal(result.GetValue(proposalOption));
            var traceDirectory = result.GetValue(traces) is { } directory ? Inputs.WritableDirectory(directory, "--trace-dir") : null;
            if (result.GetValue(report))
            {
                var entry = entryName is null ? throw new UsageException("--report needs --entry.") : entries[0];
                using var output = reporting.Open(result);
                return Report(entry, result.GetValue(budget), scheduler, traceDirectory, output, proposal);
            }

            if (traceDirectory is not null)
            {
                throw new UsageException("--trace-dir applies to --report: the table's runs write no traces.");
            }

            if (reporting.Given(result))
            {
                throw new UsageException("--steps and --chrome-trace apply to --report: the table prints no schedule.");
            }

            return proposal == ZooProposal.None
                ? Run(result.GetValue(seeds), result.GetValue(budget), result.GetValue(fixedIterations), lanes, entries, scheduler)
                : RunUnder(proposal, result.GetValue(seeds), result.GetValue(budget), result.GetValue(fixedIterations), lanes, entries, scheduler);
        });
        return command;
    }

    private static ZooProposal ReadProposal(string? name)
    {
        if (name is null)
        {
            return ZooProposal.None;
        }

        foreach (var (known, proposal) in ZooProposals.Named)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                return proposal;
            }
        }

        throw new UsageException($"--proposal: no proposal '{name}'. Known: {string.Join(", ", ZooProposals.Named.Select(n => n.Name))}.");
    }

    private static ZooEntry FindEntry(string name)
    {
        try
        {
            return BugZooCatalog.Get(name);
        }
        catch (ArgumentException e)
        {
            throw UsageException.From(e, "--entry: ");
        }
    }

    private static int Run(int seeds, int budget, int fixedIterations, int parallel, IReadOnlyList<ZooEntry> entries, ISystematicScheduler scheduler)
    {
        var failures = new List<string>();
        var total = Stopwatch.StartNew();
        var who = $"{scheduler.Name} scheduler, {scheduler.StrategyName}";
        Console.WriteLine($"Buggy: schedules run up to and including the first bug, {who}, seeds 0-{seeds - 1}, budget {budget:N0} each.");
        Console.WriteLine($"Fixed: {fixedIterations:N0} schedules, seed 0, {parallel} at once; every named interleaving must be met.");
        Console.WriteLine();
        Console.WriteLine("| # | bug | kernel fix | knob off | first bug (per seed) | found | with the fix | interleavings met |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var entry in entries)
        {
            var row = RunEntry(entry, seeds, budget, fixedIterations, parallel, scheduler, ZooProposal.None, failures);
            Console.WriteLine($"| {entry.Number} | {entry.Bug} | {entry.KernelFix} | `{entry.Knob}` | {row.Firsts} | {row.Found}/{seeds} | {row.FixedCell} | {row.EventsCell} |");
        }

        Console.WriteLine();
        Console.WriteLine($"{entries.Count} entries in {total.Elapsed.TotalSeconds:N0} s.");
        foreach (var failure in failures)
        {
            Console.Error.WriteLine(failure);
        }

        Console.WriteLine(failures.Count == 0
            ? "Every bug found with its knob off for every seed; none with the fix."
            : $"{failures.Count} claim(s) failed.");
        return failures.Count == 0 ? ExitCode.Passed : ExitCode.Failed;
    }

    /// <summary>
    /// Every entry under <paramref name="proposal"/>: which bugs it still lets through with their knob off (a finding,
    /// not a claim), and whether the fixed scenarios still pass under it (a claim: a proposal must break nothing the
    /// kernel's fixes hold, and a bug of another kind than the entry's is one it brought in).
    /// </summary>
    private static int RunUnder(ZooProposal proposal, int seeds, int budget, int fixedIterations, int parallel, IReadOnlyList<ZooEntry> entries, ISystematicScheduler scheduler)
    {
        var name = ZooProposals.NameOf(proposal);
        var failures = new List<string>();
        var closed = new List<string>();
        var open = new List<string>();
        var total = Stopwatch.StartNew();
        Console.WriteLine($"Under {name}. Buggy: schedules run up to and including the first bug, {scheduler.Name} scheduler, {scheduler.StrategyName}, seeds 0-{seeds - 1}, budget {budget:N0} each; a bug not found is one the proposal closes.");
        Console.WriteLine($"Fixed: {fixedIterations:N0} schedules, seed 0, {parallel} at once, under {name}; they must pass and meet every named interleaving.");
        Console.WriteLine();
        Console.WriteLine($"| # | bug | knob off | under {name}: first bug (per seed) | found | verdict | with the fix, under {name} | interleavings met |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var entry in entries)
        {
            var row = RunEntry(entry, seeds, budget, fixedIterations, parallel, scheduler, proposal, failures);
            var verdict = row.Found == 0 ? "closed" : row.Found == seeds ? "still found" : "found for some seeds";
            (row.Found == 0 ? closed : open).Add($"{entry.Number} {entry.Name}");
            Console.WriteLine($"| {entry.Number} | {entry.Bug} | `{entry.Knob}` | {row.Firsts} | {row.Found}/{seeds} | {verdict} | {row.FixedCell} | {row.EventsCell} |");
        }

        Console.WriteLine();
        Console.WriteLine($"{entries.Count} entries in {total.Elapsed.TotalSeconds:N0} s.");
        Console.WriteLine($"Closed by {name}: {(closed.Count == 0 ? "none" : string.Join(", ", closed))}.");
        Console.WriteLine($"Still found under {name}: {(open.Count == 0 ? "none" : string.Join(", ", open))}.");
        foreach (var failure in failures)
        {
            Console.Error.WriteLine(failure);
        }

        Console.WriteLine(failures.Count == 0
            ? $"Every fixed scenario passes under {name}; no bug of another kind appeared."
            : $"{failures.Count} claim(s) failed under {name}.");
        return failures.Count == 0 ? ExitCode.Passed : ExitCode.Failed;
    }

    /// <summary>
    /// One entry's row: the buggy scenario for each seed (a bug of another kind is a failed claim, and so is a bug not
    /// found, unless a proposal may have closed it), then the fixed one, which must pass and meet its interleavings.
    /// </summary>
    private static (string Firsts, int Found, string FixedCell, string EventsCell) RunEntry(
        ZooEntry entry, int seeds, int budget, int fixedIterations, int parallel, ISystematicScheduler scheduler, ZooProposal proposal, List<string> failures)
    {
        var under = ZooProposals.NameOf(proposal) is { } name ? $"under {name}: " : "";
        var firsts = new List<string>();
        var found = 0;
        for (var seed = 0; seed < seeds; seed++)
        {
            var buggy = ZooRunner.FindBug(entry, seed, budget, scheduler: scheduler, proposal: proposal);
            if (buggy.FirstBug is { } bug)
            {
                found++;
                firsts.Add((bug.Iteration + 1).ToString(CultureInfo.InvariantCulture));
                if (ZooRunner.Mismatch(entry, bug) is { } mismatch)
                {
                    failures.Add($"seed {seed}: {under}{mismatch}");
                }
            }
            else
            {
                firsts.Add("-");
                if (proposal == ZooProposal.None)
                {
                    failures.Add($"entry {entry.Number} ({entry.Name}): not found in {budget:N0} schedules with seed {seed}");
                }
            }
        }

        var (report, events) = ZooRunner.RunFixed(entry, fixedIterations, parallel, scheduler: scheduler, proposal: proposal);
        if (ZooRunner.FixedFailure(entry, report, events) is { } failure)
        {
            failures.Add(under + failure);
        }

        var fixedCell = report.FirstBug is null
            ? $"{report.Iterations:N0} passed ({report.IterationsPerSecond:N0}/s)"
            : $"BUG in schedule {report.FirstBug.Iteration}";
        var eventsCell = events.Length == 0
            ? "(a bug of the rule: every schedule)"
            : string.Join("; ", entry.Events.Select((text, i) => $"{text}: {events[i]:N0}"));
        return (string.Join(" ", firsts), found, fixedCell, eventsCell);
    }

    private static int Report(ZooEntry entry, int budget, ISystematicScheduler scheduler, string? traceDirectory, ReportOutput output, ZooProposal proposal)
    {
        var report = ZooRunner.FindBug(entry, seed: 0, budget, full: true, scheduler: scheduler, traceDirectory: traceDirectory, proposal: proposal);
        var under = ZooProposals.NameOf(proposal) is { } name ? $" Under {name}." : "";
        Console.WriteLine($"Entry {entry.Number}: {entry.Bug}. Knob off: {entry.Knob}. Fixed by {entry.KernelFix}.{under} Explored by the {scheduler.Name} scheduler.");
        Console.WriteLine();
        Console.WriteLine(report.Format(output.Story));
        if (report.FirstBug is { } found)
        {
            output.WriteChromeTrace(found);
        }

        if (report.FirstBug is not { } bug)
        {
            output.NoteIfNothingWritten();
            if (proposal != ZooProposal.None)
            {
                // Under a proposal, a bug not found is a finding: the proposal closes it (within this budget).
                Console.WriteLine($"entry {entry.Number} ({entry.Name}): not found in {budget:N0} schedules with seed 0 under {ZooProposals.NameOf(proposal)}: the proposal closes it");
                return ExitCode.Passed;
            }

            Console.Error.WriteLine($"entry {entry.Number} ({entry.Name}): not found in {budget:N0} schedules with seed 0");
            return ExitCode.Failed;
        }

        Console.WriteLine(ReplayCommand.HowToReplay(bug, "--scenario", entry.BuggyTestNameUnder(proposal)));
        if (ZooRunner.Mismatch(entry, bug) is { } mismatch)
        {
            Console.Error.WriteLine(mismatch);
            return ExitCode.Failed;
        }

        return ExitCode.Passed;
    }
}
