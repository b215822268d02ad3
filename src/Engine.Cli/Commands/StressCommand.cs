using System.CommandLine;
using Engine.Cli.Stress;

namespace Engine.Cli.Commands;

/// <summary><c>engine stress</c>: the machine on real threads, one per CPU, checked as it runs and at the end.</summary>
internal static class StressCommand
{
    public static Command Create()
    {
        var duration = new Option<double>("--duration", "-d") { Description = "Seconds to run.", DefaultValueFactory = _ => 10 };
        var cpus = new Option<int>("--cpus") { Description = "Simulated CPUs (one worker thread each).", DefaultValueFactory = _ => 4 };
        var seed = new Option<int>("--seed") { Description = "Seed of the workers' operation mix.", DefaultValueFactory = _ => 1 };
        var frames = new Option<int>("--frames") { Description = "Physical frames (4 KiB each).", DefaultValueFactory = _ => 65_536 };
        var layout = new Option<PteLayout>("--pte-layout") { Description = "Native64 or SplitPae.", DefaultValueFactory = _ => PteLayout.Native64 };
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };
        var disable = new Option<string[]>("--disable")
        {
            Description = "Switch off protocol knobs (repeatable): " + string.Join(", ", StressOptions.Knobs) + ".",
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("stress", "Run the machine on real threads with a checked mix of accesses, faults, mmap/munmap, mprotect, madvise, fork, shared and private file mappings, writeback, msync, eviction, GUP pins (short and long-term), references and pokes; exit code 1 on any wrong value, invariant violation or leak.");
        command.Options.Add(duration);
        command.Options.Add(cpus);
        command.Options.Add(seed);
        command.Options.Add(frames);
        command.Options.Add(layout);
        command.Options.Add(json);
        command.Options.Add(disable);
        command.SetAction(result =>
        {
            var options = new StressOptions(TimeSpan.FromSeconds(result.GetValue(duration)), result.GetValue(cpus), result.GetValue(seed),
                result.GetValue(frames), result.GetValue(layout), result.GetValue(json), result.GetValue(disable) ?? []);
            var unknown = options.Disabled.Where(k => !StressOptions.Knobs.Contains(k)).ToList();
            if (unknown.Count > 0)
            {
                Console.Error.WriteLine($"--disable: unknown knob(s) {string.Join(", ", unknown)}; known: {string.Join(", ", StressOptions.Knobs)}.");
                return 2;
            }

            if (options.Duration <= TimeSpan.Zero)
            {
                Console.Error.WriteLine("--duration must be positive.");
                return 2;
            }

            return StressRunner.Run(options);
        });
        return command;
    }
}
