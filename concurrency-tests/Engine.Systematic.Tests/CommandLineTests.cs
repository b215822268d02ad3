using ClassicBugs;
using Engine.Cli;

namespace Engine.Systematic.Tests;

/// <summary>The <c>engine</c> command, run in-process: test, replay and classics, with their exit codes.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _traces = Directory.CreateTempSubdirectory("engine-cli-tests-").FullName;
    private readonly string _assembly = typeof(LostUpdate).Assembly.Location;

    public void Dispose() => Directory.Delete(_traces, recursive: true);

    [Fact]
    public void TestFindsTheBugWritesATraceAndExitsWithOne()
    {
        var (code, output) = Engine("test", _assembly, "--method", "LostUpdate.Buggy", "--iterations", "1000", "--trace-dir", _traces);

        Assert.Equal(1, code);
        Assert.Contains("ClassicBugs.LostUpdate.Buggy", output);
        Assert.Contains("Assertion failed in T0 'main': lost update", output);
        Assert.Contains("replay: sys1:", output);
        Assert.Single(Directory.GetFiles(_traces, "*.json"));
    }

    [Fact]
    public void TestOfACorrectVersionExitsWithZero()
    {
        var (code, output) = Engine("test", _assembly, "--method", "LostUpdate.Correct", "--iterations", "500", "--strategy", "pct", "--bound", "2");
        Assert.Equal(0, code);
        Assert.Contains("no bug in 500 iteration(s)", output);
    }

    [Fact]
    public void ReplayOfTheTraceFileReproducesTheBug()
    {
        Engine("test", _assembly, "--method", "AbaStack.Buggy", "--iterations", "1000", "--trace-dir", _traces);
        var trace = Assert.Single(Directory.GetFiles(_traces, "*.json"));

        var (code, output) = Engine("replay", trace);

        Assert.Equal(1, code);
        Assert.Contains("Reproduced:", output);
        Assert.Contains("ABA: node", output);
    }

    [Fact]
    public void ReplayOfAReplayStringNeedsTheTestAndReproducesIt()
    {
        var (_, found) = Engine("test", _assembly, "--method", "LockOrderDeadlock.Buggy", "--iterations", "1000", "--trace-dir", _traces);
        var replay = found.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("replay: ", StringComparison.Ordinal))["replay: ".Length..];

        Assert.Equal(2, Engine("replay", replay).Code);
        var (code, output) = Engine("replay", replay, "--assembly", _assembly, "--method", "LockOrderDeadlock.Buggy");
        Assert.Equal(1, code);
        Assert.Contains("Deadlock", output);
    }

    [Fact]
    public void ReplayAgainstTheWrongTestReportsDivergence()
    {
        var (_, found) = Engine("test", _assembly, "--method", "LostUpdate.Buggy", "--iterations", "1000", "--trace-dir", _traces);
        var replay = found.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("replay: ", StringComparison.Ordinal))["replay: ".Length..];

        var (code, output) = Engine("replay", replay, "--assembly", _assembly, "--method", "LazyInitialization.Buggy");

        Assert.Equal(3, code);
        Assert.Contains("DIVERGED: step", output);
    }

    [Fact]
    public void ClassicsRunsTheTablesAndExitsWithZero()
    {
        var (code, output) = Engine("classics", "--seeds", "2", "--budget", "1000", "--correct-iterations", "200", "--only", "torn-read");
        Assert.Equal(0, code);
        Assert.Contains("| torn-read |", output);
        Assert.Contains("All buggy versions found by the portfolio for every seed", output);
    }

    [Fact]
    public void ZooRunsAnEntryAndExitsWithZero()
    {
        var (code, output) = Engine("zoo", "--entry", "wrong-cow", "--seeds", "2", "--budget", "100", "--fixed-iterations", "200", "--parallel", "1");
        Assert.Equal(0, code);
        Assert.Contains("| 2 | a long-term pin loses its page", output);
        Assert.Contains("| 1 1 | 2/2 | 200 passed", output);
        Assert.Contains("Every bug found with its knob off for every seed; none with the fix.", output);
    }

    [Fact]
    public void ZooExitsWithOneWhenABugIsNotFoundWithinTheBudget()
    {
        // Dirty COW needs a particular interleaving; one schedule per seed is not enough for seed 0.
        var (code, output) = Engine("zoo", "--entry", "dirty-cow", "--seeds", "1", "--budget", "1", "--fixed-iterations", "50", "--parallel", "1");
        Assert.Equal(1, code);
        Assert.Contains("not found in 1 schedules with seed 0", output);
    }

    [Fact]
    public void ZooReportTellsOneBugsStory()
    {
        var (code, output) = Engine("zoo", "--entry", "9", "--report");
        Assert.Equal(0, code);
        Assert.Contains("Entry 9:", output);
        Assert.Contains("the R/O pin reads", output);
        Assert.Contains("replay: sys1:", output);
        Assert.Contains("T1 cpu1", output);
    }

    [Fact]
    public void ZooRejectsAnUnknownEntryAndBadBudgets()
    {
        var (code, output) = Engine("zoo", "--entry", "no-such-bug");
        Assert.Equal(2, code);
        Assert.Contains("Known: 1 missed-cow", output);
        Assert.Equal(2, Engine("zoo", "--budget", "0").Code);
        Assert.Equal(2, Engine("zoo", "--report").Code);
    }

    [Fact]
    public void StressRunsTheMachineAndPasses()
    {
        var json = Path.Combine(_traces, "stress.json");
        var (code, output) = Engine("stress", "--duration", "1", "--cpus", "2", "--frames", "8192", "--json", json);

        Assert.Equal(0, code);
        Assert.Contains("verdict: PASS", output);
        Assert.Contains("| Fork |", output);
        Assert.Contains("| PinLongTerm |", output);
        Assert.Contains("GUP: ", output);
        Assert.Contains("\"Passed\": true", File.ReadAllText(json));
        Assert.Contains("\"ProcessStoreSeenByPin\"", File.ReadAllText(json));
    }

    [Fact]
    public void StressWithoutUnsharingForReadOnlyPinsFindsAPinThatMissedAStore()
    {
        // Without FAULT_FLAG_UNSHARE a read-only pin keeps a page a fork shared, and the process's next store copies
        // the page away from the pin. The run stops at the first wrong read, usually within a second.
        var (code, output) = Engine("stress", "--duration", "20", "--cpus", "2", "--frames", "8192", "--disable", "UnshareOnReadOnlyPin");

        Assert.Equal(1, code);
        Assert.Contains("verdict: FAIL", output);
        Assert.Matches(@"pin [^\n]*: read 0x[0-9a-f]+, expected 0x", output[output.IndexOf("verdict: FAIL", StringComparison.Ordinal)..]);
    }

    [Fact]
    public void StressRejectsANonPositiveDuration() => Assert.Equal(2, Engine("stress", "--duration", "0").Code);

    [Fact]
    public void TestUnderCoyoteFindsTheBugAndItsTraceReplaysUnderEitherScheduler()
    {
        var (code, output) = Engine("test", _assembly, "--method", "AbaStack.Buggy", "--scheduler", "coyote", "--iterations", "1000", "--trace-dir", _traces);
        Assert.Equal(1, code);
        Assert.Contains("coyote portfolio", output);
        Assert.Contains("Coyote's report:", output);
        Assert.Contains("cross-check: the built-in scheduler follows the same schedule to the same bug", output);
        var trace = Assert.Single(Directory.GetFiles(_traces, "*-coyote-*.json"));

        var (again, replayed) = Engine("replay", trace);
        Assert.Equal(1, again);
        Assert.Contains("Replayed by the Coyote scheduler.", replayed);
        Assert.Contains("ABA: node", replayed);

        var (followed, builtin) = Engine("replay", trace, "--scheduler", "builtin");
        Assert.Equal(1, followed);
        Assert.Contains("Replayed by the built-in scheduler.", builtin);
        Assert.Contains("ABA: node", builtin);
    }

    [Fact]
    public void ZooAndClassicsRunUnderCoyote()
    {
        var (zoo, table) = Engine("zoo", "--scheduler", "coyote", "--entry", "free-before-flush", "--seeds", "2", "--fixed-iterations", "200");
        Assert.Equal(0, zoo);
        Assert.Contains("coyote scheduler, portfolio", table);
        Assert.Contains("| 2/2 | 200 passed", table);

        var (classics, tables) = Engine("classics", "--scheduler", "coyote", "--only", "lost-update", "--seeds", "2", "--correct-iterations", "200");
        Assert.Equal(0, classics);
        Assert.Contains("| bug | portfolio | random | prioritization(10) | fair-prioritization(10) | probabilistic(3) |", tables);
        Assert.Contains("| lost-update |", tables);
    }

    [Fact]
    public void AZooBugCoyoteFoundReplaysFromItsTraceWithoutAnAssembly()
    {
        var (code, output) = Engine("zoo", "--scheduler", "coyote", "--entry", "7", "--report");
        Assert.Equal(0, code);
        Assert.Contains("Explored by the coyote scheduler.", output);
        var trace = output.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("trace:", StringComparison.Ordinal))["trace:".Length..].Trim().Split(' ')[0];

        var (again, replayed) = Engine("replay", trace);
        File.Delete(trace);
        Assert.Equal(1, again);
        Assert.Contains("use-after-free through a stale TLB entry", replayed);
    }

    [Fact]
    public void CompareRunsBothSchedulersOnTheSameScenario()
    {
        var (code, output) = Engine("compare", "--only", "lost-update", "--seeds", "2", "--budget", "1000", "--fixed-iterations", "100");
        Assert.Equal(0, code);
        Assert.Contains("| scenario | builtin portfolio | builtin random | builtin pct(3) | coyote portfolio | coyote random | coyote prioritization(10) |", output);
        Assert.Contains("| classic lost-update |", output);
        Assert.Contains("100 clean", output);
    }

    [Theory]
    [InlineData("zoo", "--scheduler", "coyote", "--parallel", "2")]
    [InlineData("zoo", "--scheduler", "coyote", "--strategy", "pct")]
    [InlineData("zoo", "--strategy", "prioritization")]
    [InlineData("zoo", "--scheduler", "nope")]
    [InlineData("zoo", "--bound", "0")]
    [InlineData("zoo", "--entry", "7", "--seeds", "-1")]
    [InlineData("classics", "--scheduler", "nope")]
    [InlineData("test", "missing.dll", "--scheduler", "coyote", "--parallel", "2")]
    [InlineData("test", "missing.dll", "--strategy", "random", "--bound", "3")]
    [InlineData("test", "missing.dll")]
    [InlineData("test", "missing.dll", "--iterations", "many")]
    [InlineData("replay", "sys1:AAAA", "--scheduler", "coyote")]
    [InlineData("replay", "not-a-schedule")]
    [InlineData("compare", "--only", "no-such-scenario")]
    [InlineData("compare", "--seeds", "0")]
    [InlineData("no-such-command")]
    public void UsageMistakesExitWithTwoAndOneLine(params string[] args)
    {
        var (code, output) = Engine(args);
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", output);
        Assert.True(output.Trim().Split('\n').Length <= 2, output);
    }

    [Fact]
    public void UnknownTestIsAUsageError()
        => Assert.Equal(2, Engine("test", _assembly, "--method", "NoSuch.Test").Code);

    private static (int Code, string Output) Engine(params string[] args)
    {
        var original = Console.Out;
        var originalError = Console.Error;
        using var writer = new StringWriter();
        Console.SetOut(writer);
        Console.SetError(writer);
        try
        {
            var code = EngineCommandLine.Run(args);
            return (code, writer.ToString());
        }
        finally
        {
            Console.SetOut(original);
            Console.SetError(originalError);
        }
    }
}
