using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Engine.Cli.Stress;

namespace Engine.Cli.Commands;

/// <summary><c>engine stress</c>: the machine on real threads, one per CPU, checked as it runs and at the end.</summary>
internal static class StressCommand
{
    public static Command Create()
    {
        var duration = Inputs.Seconds("--duration", "Seconds to run.", 10, "-d");
        var cpus = Inputs.Integer("--cpus", "Simulated CPUs (one worker thread each), 1 to 64.", 4, int.MinValue);
        var seed = Inputs.Integer("--seed", "Seed of the workers' operation mix.", 1, int.MinValue);
        var frames = Inputs.Integer("--frames", "Physical frames (4 KiB each): at least 128 + 128 per CPU.", 65_536, int.MinValue);
        var layout = new Option<PteLayout>("--pte-layout") { Description = "Native64 or SplitPae.", DefaultValueFactory = _ => PteLayout.Native64 };
        layout.CustomParser = ParseLayout;
        var swapSlots = Inputs.OptionalInteger("--swap-slots", $"Swap slots (4 KiB each), 0 (no swap) to {MachineOptions.MaxSwapSlots:N0}. Default: as many as frames (the machine's default); with --working-set, twice the working set plus 128 + 128 per CPU. A working set needs at least itself plus 128 + 128 per CPU, less the frames.", 0, MachineOptions.MaxSwapSlots);
        var workingSet = Inputs.Factor("--working-set", $"Checked data as a factor of memory (e.g. 1.5 or 2, at most {StressOptions.MaxWorkingSet:0}): the shared region grows to that many pages less the file's 64, so the machine must swap. General mix only.", StressOptions.MaxWorkingSet);
        var folioOrder = Inputs.Integer("--anon-folio-order", $"Large anonymous folios of 2^N pages, 0 (off) to {MachineOptions.MaxAnonFolioOrder} (2 MiB); 2 is 16 KiB, 4 is 64 KiB. General mix only; each CPU then also maps, cuts through, forks, pins and pages out folios of its own, and needs three folios more of --frames.", 0, 0, MachineOptions.MaxAnonFolioOrder);
        var mapcount = new Option<MapcountScheme>("--mapcount") { Description = "How pages and folios count their mappings: per-page (Linux up to 6.14), mm-id (6.15's MM owner tracking), or seed 002's proposals tri-state and none (which count order-0 pages too). mm-id needs --anon-folio-order.", DefaultValueFactory = _ => MapcountScheme.PerPage };
        mapcount.CustomParser = ParseMapcount;
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file (checked before the run starts)." };
        var disable = new Option<string[]>("--disable")
        {
            Description = "Switch off protocol knobs (repeatable): " + string.Join(", ", StressOptions.Knobs) + ".",
            AllowMultipleArgumentsPerToken = true,
        };
        var mix = new Option<string>("--mix")
        {
            Description = "What the workers do: auto (the first disabled knob's targeted mix, else general), general, " + string.Join(", ", StressMixes.Names.Keys.Skip(1)) + ".",
            DefaultValueFactory = _ => "auto",
        };
        var perturb = new Option<string>("--perturb")
        {
            Description = "Seeded random delays at every Engine.Sync point: auto (on for a targeted mix), on, off.",
            DefaultValueFactory = _ => "auto",
        };
        var proposal = new Option<string?>("--proposal") { Description = "Run under a design no kernel shipped: rule-d (seed 001's rule (d): reclaim write-protects a page, and flushes, before the swap cache)." };
        var command = new Command("stress", "Run the machine on real threads with a checked mix of accesses, faults, mmap/munmap, mprotect, madvise, fork, shared and private file mappings, writeback, msync, eviction, GUP pins (short and long-term), references and pokes, with kswapd reclaiming to swap beside them (a working set larger than memory keeps it busy). " +
                                            "Exit codes: 0 passed; 1 a wrong value, invariant violation or leak; 2 a wrong option, a run too short to exercise the pin oracle (or, with --working-set, to swap), or memory and swap both full.");
        command.Options.Add(duration);
        command.Options.Add(cpus);
        command.Options.Add(seed);
        command.Options.Add(frames);
        command.Options.Add(layout);
        command.Options.Add(swapSlots);
        command.Options.Add(workingSet);
        command.Options.Add(folioOrder);
        command.Options.Add(mapcount);
        command.Options.Add(json);
        command.Options.Add(disable);
        command.Options.Add(mix);
        command.Options.Add(perturb);
        command.Options.Add(proposal);
        command.SetAction(result =>
        {
            var ruleD = result.GetValue(proposal) switch
            {
                null => false,
                var name when string.Equals(name, "rule-d", StringComparison.OrdinalIgnoreCase) => true,
                var name => throw new UsageException($"--proposal: no proposal '{name}'. Known: rule-d."),
            };
            var options = new StressOptions(TimeSpan.FromSeconds(result.GetValue(duration)), result.GetValue(cpus), result.GetValue(seed),
                result.GetValue(frames), result.GetValue(layout), result.GetValue(json), (result.GetValue(disable) ?? []).Distinct(StringComparer.Ordinal).ToArray(),
                SwapSlots: result.GetValue(swapSlots), WorkingSet: result.GetValue(workingSet), RuleD: ruleD,
                AnonFolioOrder: result.GetValue(folioOrder), Mapcount: result.GetValue(mapcount));
            var unknown = options.Disabled.Where(k => !StressOptions.Knobs.Contains(k)).ToList();
            if (unknown.Count > 0)
            {
                throw new UsageException($"--disable: unknown knob(s) {string.Join(", ", unknown)}; known: {string.Join(", ", StressOptions.Knobs)}.");
            }

            options = Resolve(options, result.GetValue(mix) ?? "auto", result.GetValue(perturb) ?? "auto");
            CheckMachine(options);
            using var output = options.JsonPath is null ? null : Inputs.CreateOutputFile(options.JsonPath, "--json");
            return StressRunner.Run(options, output);
        });
        return command;
    }

    /// <summary>
    /// The mix and the perturbation the options ask for. <c>auto</c> mix: the targeted mix of the first disabled knob
    /// (<see cref="StressMixes.For"/>), but the general mix for <c>LocklessPteRetry</c> on <c>Native64</c>, where an
    /// entry is read in one access and there is nothing to tear; <c>auto</c> perturbation: on for a targeted mix.
    /// Must agree with <see cref="StressMixes.WantsPerturbation"/>, which Program.cs asks before the parser runs.
    /// </summary>
    private static StressOptions Resolve(StressOptions options, string mixName, string perturbName)
    {
        StressMix mix;
        if (mixName.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            mix = options.Disabled.Count == 0 ? StressMix.General : StressMixes.For(options.Disabled[0]);
            if (mix == StressMix.TornPte && options.Layout != PteLayout.SplitPae)
            {
                mix = StressMix.General;
            }
        }
        else if (!StressMixes.Names.TryGetValue(mixName, out mix))
        {
            throw new UsageException($"--mix must be auto, {string.Join(", ", StressMixes.Names.Keys)} (got '{mixName}').");
        }
        else if (mix == StressMix.TornPte && options.Layout != PteLayout.SplitPae)
        {
            throw new UsageException("--mix torn-pte needs --pte-layout SplitPae: on Native64 an entry is read in one 64-bit access, and there is nothing to tear.");
        }

        var perturb = perturbName.ToLowerInvariant() switch
        {
            "auto" => mix != StressMix.General,
            "on" => true,
            "off" => false,
            _ => throw new UsageException($"--perturb must be auto, on or off (got '{perturbName}')."),
        };
        if (perturb && !Engine.Sync.SchedulingHook.IsEnabled)
        {
            // Program.cs enables the hook from the raw arguments; only a command line it read otherwise ends here.
            throw new InvalidOperationException("stress: perturbation was asked for, but the scheduling hook was not enabled before Engine.Sync was first used (Program.cs decides from the arguments).");
        }

        return options with { Mix = mix, Perturb = perturb };
    }

    /// <summary>
    /// The machine's own limits (<see cref="MachineOptions.Validate"/>) worded for the option that broke them, then what a
    /// stress run needs beyond them: <see cref="StressOptions.MinimumFrames"/>, and memory for the frames.
    /// </summary>
    /// <remarks><c>engine mapcount</c> checks its stress runs' settings here too, before any work.</remarks>
    internal static void CheckMachine(StressOptions options)
    {
        try
        {
            options.ToMachineOptions().Validate();
        }
        catch (ArgumentException e)
        {
            var option = e.ParamName switch
            {
                nameof(MachineOptions.Cpus) => "--cpus",
                nameof(MachineOptions.Frames) => "--frames",
                nameof(MachineOptions.PteLayout) => "--pte-layout",
                nameof(MachineOptions.SwapSlots) => "--swap-slots",
                nameof(MachineOptions.AnonFolioOrder) => "--anon-folio-order",
                nameof(MachineOptions.Mapcount) => "--mapcount",
                _ => "the machine",
            };
            throw UsageException.From(e, option + ": ");
        }

        var minimum = options.MinimumFramesForRun;
        if (options.Frames < minimum)
        {
            var folios = options.AnonFolioOrder == 0 ? "" : $" and folios of order {options.AnonFolioOrder}";
            var perCpu = options.AnonFolioOrder == 0 ? "" : $", and three folios of {options.FolioPages:N0} frames per CPU";
            throw new UsageException($"--frames: a stress run with {options.Cpus} CPU(s){folios} needs at least {minimum:N0} frames (128 + 128 per CPU{perCpu}) (got {options.Frames:N0}).");
        }

        // MM ids count large folios' mappings only; seed 002's proposals (tri-state, none) count every page's, and run
        // without folios as well.
        if (options.Mapcount == MapcountScheme.MmId && options.AnonFolioOrder == 0)
        {
            throw new UsageException($"--mapcount {StressRunner.MapcountName(options.Mapcount)} counts the mappings of large folios, and there are none: give --anon-folio-order 1 to {MachineOptions.MaxAnonFolioOrder} as well.");
        }

        if (options.AnonFolioOrder > 0 && options.Mix != StressMix.General)
        {
            throw new UsageException($"--anon-folio-order applies to the general mix: the targeted mix {StressMixes.Name(options.Mix)} works on a few pages shared by every CPU, too few for a folio (--mix general runs the general mix with a knob off).");
        }

        if (options.Mix == StressMix.Reclaim && options.EffectiveSwapSlots == 0)
        {
            throw new UsageException("--mix reclaim needs swap: kswapd swaps the mix's pages out (give --swap-slots above 0).");
        }

        if (options.WorkingSetPages is { } pages)
        {
            if (options.Mix != StressMix.General)
            {
                throw new UsageException($"--working-set applies to the general mix: the targeted mix {StressMixes.Name(options.Mix)} works on a few pages shared by every CPU.");
            }

            // At most 16 times memory, the minimum stays below MaxSwapSlots (15 × MaxFrames is under 2^26).
            var slots = options.MinimumSwapSlots;
            if (options.EffectiveSwapSlots < slots)
            {
                throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                    $"--swap-slots: a working set of {pages:N0} pages on {options.Frames:N0} frames with {options.Cpus} CPU(s) needs at least {slots:N0} swap slots (the working set plus 128 + 128 per CPU, less the frames) (got {options.EffectiveSwapSlots:N0})."));
            }
        }

        // Memory: the frames, and each swap slot's 20 bytes; a slot's 4 KiB page is allocated when it is first written
        // and kept, and the device hands slots out from a rotating cursor, so a working set that swaps all along writes
        // every slot in time.
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var written = options.WorkingSet is null ? 0 : options.EffectiveSwapSlots;
        var needed = ((long)options.Frames * 4096) + ((long)options.EffectiveSwapSlots * 20) + ((long)written * 4096);
        if (available > 0 && needed > available * 9 / 10)
        {
            var what = written > 0 ? $"--frames and --working-set: {options.Frames:N0} frames and {written:N0} swap slots written"
                : options.EffectiveSwapSlots > options.Frames ? $"--frames and --swap-slots: {options.Frames:N0} frames and {options.EffectiveSwapSlots:N0} swap slots"
                : $"--frames: {options.Frames:N0} frames";
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"{what} need {needed / (double)(1L << 30):0.0} GiB of memory; this process may use {available / (double)(1L << 30):0.0} GiB."));
        }
    }

    private static MapcountScheme ParseMapcount(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (Conformance.MapcountSchemeNames.Parse(text) is { } scheme)
        {
            return scheme;
        }

        result.AddError($"--mapcount must be {string.Join(", ", Enum.GetValues<MapcountScheme>().SkipLast(1).Select(StressRunner.MapcountName))} or {StressRunner.MapcountName(Enum.GetValues<MapcountScheme>()[^1])} (got '{text}').");
        return MapcountScheme.PerPage;
    }

    private static PteLayout ParseLayout(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        foreach (var layout in Enum.GetValues<PteLayout>())
        {
            if (string.Equals(layout.ToString(), text, StringComparison.OrdinalIgnoreCase))
            {
                return layout;
            }
        }

        result.AddError($"--pte-layout must be {string.Join(" or ", Enum.GetNames<PteLayout>())} (got '{text}').");
        return PteLayout.Native64;
    }
}
