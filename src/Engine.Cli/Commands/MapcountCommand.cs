using System.CommandLine;
using Engine.Cli.Mapcount;
using Engine.Cli.Stress;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine mapcount</c> (issue 19): the four mapcount designs side by side (per-page, MM ids, seed 002's tri-state
/// mapcount and no mapcount), each through the bug zoo with large folios, cow.c's table on base pages and large folios,
/// the large-folio races under the tester, and a stress run with large folios; the table, the report of every
/// unsoundness found, and exit code 0 when every cell is what docs/mapcount.md expects (<see cref="MapcountExpectations"/>).
/// </summary>
internal static class MapcountCommand
{
    /// <summary>The largest <c>--seed</c>: the buggy runs' seeds count up from it.</summary>
    private const int MaxSeed = 1_000_000_000;

    /// <summary>The most <c>--seeds</c>.</summary>
    private const int MaxSeeds = 1_000;

    public static Command Create()
    {
        var designs = new Option<string>("--designs")
        {
            Description = $"The designs to compare, comma-separated, in the table's order: {string.Join(",", MapcountDesign.All.Select(d => d.Name))} (the default: all four).",
            DefaultValueFactory = _ => string.Join(",", MapcountDesign.All.Select(d => d.Name)),
        };
        var seeds = Inputs.Integer("--seeds", $"Seeds per zoo entry for the scenario with its knob off, 1 to {MaxSeeds:N0} (--seed onwards).", 2, 1, MaxSeeds);
        var budget = Inputs.Integer("--budget", "Schedules allowed to find each zoo entry's race with its knob off, per seed.", 1_000, 1);
        var fixedIterations = Inputs.Integer("--fixed-iterations", "Schedules each zoo entry's fixed scenario must pass.", 500, 1);
        var raceIterations = Inputs.Integer("--race-iterations", "Schedules each large-folio race runs.", 1_000, 1);
        var stressSeconds = Inputs.Seconds("--stress-seconds", "Seconds of each design's stress run (general mix, 2 CPUs, 2,048 frames, folios of order 2).", 3);
        var seed = Inputs.Integer("--seed", $"The first seed of the zoo's knob-off runs, and the seed of the fixed, race and stress runs, 0 to {MaxSeed:N0}.", 0, 0, MaxSeed);
        var parallel = Inputs.OptionalInteger("--parallel", $"Schedules of the fixed and race runs run at once, 1 to {CommonOptions.MaxParallel} (default: the number of cores).", 1, CommonOptions.MaxParallel, "-p");
        var command = new Command("mapcount", "Compare the mapcount designs side by side (per-page, mm-id, tri-state, none): the bug zoo with large folios, cow.c's table on base pages and large folios, the large-folio races and a stress run, under each; " +
                                              "the table, then the report of every unsoundness found. Exit codes: 0 every cell as docs/mapcount.md expects (an expected unsoundness is a result, not a failure); 1 a cell differs (listed); 2 a wrong option.");
        command.Options.Add(designs);
        command.Options.Add(seeds);
        command.Options.Add(budget);
        command.Options.Add(fixedIterations);
        command.Options.Add(raceIterations);
        command.Options.Add(stressSeconds);
        command.Options.Add(seed);
        command.Options.Add(parallel);
        command.SetAction(result =>
        {
            var settings = new MapcountSettings(ReadDesigns(result.GetValue(designs) ?? ""), result.GetValue(seeds), result.GetValue(budget), result.GetValue(fixedIterations),
                result.GetValue(raceIterations), result.GetValue(stressSeconds), result.GetValue(seed), result.GetValue(parallel) ?? Math.Min(Environment.ProcessorCount, CommonOptions.MaxParallel));

            // The stress runs' settings go through stress's own checks, before any work.
            foreach (var design in settings.Designs)
            {
                CheckStress(settings.StressOptions(design), design);
            }

            return MapcountRunner.Run(settings);
        });
        return command;
    }

    private static IReadOnlyList<MapcountDesign> ReadDesigns(string text)
    {
        var names = text.Split(',', StringSplitOptions.TrimEntries);
        if (names.All(n => n.Length == 0))
        {
            throw new UsageException($"--designs needs at least one design: {string.Join(",", MapcountDesign.All.Select(d => d.Name))}.");
        }

        var chosen = new List<MapcountDesign>();
        foreach (var name in names)
        {
            var design = MapcountDesign.Find(name)
                ?? throw new UsageException($"--designs: no design '{name}'. Known: {string.Join(", ", MapcountDesign.All.Select(d => d.Name))} (comma-separated, no empty names).");
            if (chosen.Contains(design))
            {
                throw new UsageException($"--designs: {design.Name} is named twice.");
            }

            chosen.Add(design);
        }

        return chosen;
    }

    private static void CheckStress(StressOptions options, MapcountDesign design)
    {
        try
        {
            StressCommand.CheckMachine(options);
        }
        catch (UsageException e)
        {
            throw new UsageException($"{design.Name}'s stress run: {e.Message}", e);
        }
    }
}
