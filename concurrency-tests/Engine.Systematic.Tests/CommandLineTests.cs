using ClassicBugs;
using Engine.Cli;
using Engine.Cli.Mapcount;
using Engine.Cli.Stress;

namespace Engine.Systematic.Tests;

/// <summary>The <c>engine</c> command, run in-process: test, replay and classics, with their exit codes.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _traces = Directory.CreateTempSubdirectory("engine-cli-tests-").FullName;
    private readonly string _assembly = typeof(LostUpdate).Assembly.Location;

    public void Dispose() => Directory.Delete(_traces, recursive: true);

    /// <summary>The exit codes, as README and --help state them.</summary>
    private const int Passed = 0, Failed = 1, Usage = 2, Diverged = 3;

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
    public void ZooUnderAProposalSaysWhichBugsItClosesAndExitsWithZero()
    {
        var (code, output) = Engine("zoo", "--entry", "reclaim-pinned", "--proposal", "rule-d", "--seeds", "2", "--budget", "200", "--fixed-iterations", "300", "--parallel", "1");
        Assert.Equal(0, code);
        Assert.Contains("Under rule-d.", output);
        Assert.Contains("| - - | 0/2 | closed | 300 passed", output);
        Assert.Contains("Closed by rule-d: 15 reclaim-pinned.", output);
        Assert.Contains("Every fixed scenario passes under rule-d; no bug of another kind appeared.", output);

        // A bug rule (d) leaves is still found, and its report replays by the name the trace records.
        (code, output) = Engine("zoo", "--entry", "batched-flush-mprotect", "--proposal", "rule-d", "--report", "--trace-dir", _traces);
        Assert.Equal(0, code);
        Assert.Contains("Under rule-d.", output);
        Assert.Contains("--scenario batched-flush-mprotect-buggy+rule-d", output);
    }

    [Fact]
    public void StressUnderRuleDPassesTheReclaimHuntThatFindsTheFreezeOrderWithoutIt()
    {
        var (code, output) = Engine("stress", "--duration", "3", "--cpus", "2", "--frames", "1024", "--disable", "FreezeBeforeDirtyTest", "--proposal", "rule-d");
        Assert.Equal(0, code);
        Assert.Contains("off: FreezeBeforeDirtyTest, under rule (d); targeted mix reclaim", output);
        Assert.Contains("verdict: PASS", output);
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
        Assert.Contains("the R/O pin of 0x1000000000 reads", output);
        Assert.Contains("replay: sys1:", output);
        Assert.Contains("T1 cpu1", output);
    }

    [Fact]
    public void ZooReportTellsTheRaceInEventsAndWritesAChromeTraceThatReplayWritesToo()
    {
        var chrome = Path.Combine(_traces, "dirty-cow.json");
        var (code, output) = Engine("zoo", "--entry", "dirty-cow", "--report", "--chrome-trace", chrome, "--trace-dir", _traces);
        Assert.Equal(0, code);
        Assert.Contains("do_cow_fault: copy page-cache pfn", output);
        Assert.Contains("access_remote_vm: store 0x29a", output);
        Assert.DoesNotContain(". Read ", output);
        Assert.Contains($"chrome trace: {chrome}", output);
        using (var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(chrome)))
        {
            var events = document.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
            Assert.Equal(2, events.Count(e => e.GetProperty("name").GetString() == "thread_name"));
            Assert.Contains(events, e => e.GetProperty("name").GetString() == "access_remote_vm");
        }

        // --steps shows the low-level steps under the events; replay of the trace writes the same Chrome trace.
        var trace = Directory.GetFiles(_traces, "dirty-cow-buggy-*.json").Single();
        var again = Path.Combine(_traces, "replayed.json");
        var (replayed, story) = Engine("replay", trace, "--steps", "--chrome-trace", again);
        Assert.Equal(1, replayed);
        Assert.Contains(". Read ", story);
        Assert.Contains("access_remote_vm: store 0x29a", story);
        Assert.Equal(TraceEvents(chrome), TraceEvents(again));
    }

    /// <summary>The <c>traceEvents</c> array of a Chrome trace file, as JSON text (the schedule without the run's metadata).</summary>
    private static string TraceEvents(string path)
    {
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("traceEvents").GetRawText();
    }

    [Fact]
    public void AChromeTraceIsNotLeftBehindWhenNothingFailed()
    {
        var chrome = Path.Combine(_traces, "none.json");
        var (code, output) = Engine("test", _assembly, "--method", "LostUpdate.Correct", "--iterations", "50", "--chrome-trace", chrome);
        Assert.Equal(0, code);
        Assert.Contains("no failing schedule, nothing written", output);
        Assert.False(File.Exists(chrome));

        var (found, story) = Engine("test", _assembly, "--method", "LostUpdate.Buggy", "--iterations", "1000", "--chrome-trace", chrome);
        Assert.Equal(1, found);
        Assert.Contains($"chrome trace: {chrome}", story);
        Assert.True(new FileInfo(chrome).Length > 100);
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

    /// <summary>
    /// With a knob off, <c>stress</c> runs that knob's race on purpose (its targeted mix, with perturbation) and stops at
    /// the first failure, worded as the knob's zoo entry words the bug, with the CPU and the address. Each of these is
    /// found within a second on a 2-core machine (docs/engine.md has the table); the duration is only a ceiling.
    /// </summary>
    [Theory]
    [InlineData("UnshareOnReadOnlyPin", "ro-pin-fork", @"the R/O pin of 0x[0-9a-f]+ \(page \d; the process maps [^)]*\) reads 0x[0-9a-f]+, not CPU \d's last store 0x[0-9a-f]+: it holds a page the parent no longer maps")]
    [InlineData("GupFastForkSeq", "pin-fork", @"the pin holds 0x[0-9a-f]+ at 0x[0-9a-f]+ \(page \d; [^)]*\), not CPU \d's store 0x[0-9a-f]+: the pinned page was shared with the child and the parent's write copied it away from the pin")]
    [InlineData("FlushBeforeFree", "tlb", @"use-after-free through a stale TLB entry: CPU \d's access to 0x[0-9a-f]+ reached pfn 0x[0-9a-f]+ after the zap freed it")]
    [InlineData("NestedTlbFlush", "tlb", @"nested TLB flush missed: CPU \d read the old data 0x[0-9a-f]+ at 0x[0-9a-f]+ [^\n]*after madvise\(DONTNEED\) returned")]
    [InlineData("DelayRmap", "lost-dirty", @"lost store: CPU \d's last store \(0x[0-9a-f]+\) at 0x[0-9a-f]+ \(file page \d, [^)]*\) is (not in the backing store|gone: read after eviction)")]
    [InlineData("LocklessPteRetry", "torn-pte", @"torn read: CPU \d's lockless read at 0x[0-9a-f]+ saw a present entry for pfn 0x[0-9a-f]+ \(high half 0x00000000")]
    [InlineData("FreezeBeforeDirtyTest", "reclaim", @"lost I/O: CPU \d's process reads 0x[0-9a-f]+ at 0x[0-9a-f]+ \([^)]*\), not what its direct I/O wrote \(0x[0-9a-f]+\): reclaim freed the page after the I/O dirtied it")]
    [InlineData("FlushTlbBatchedPending", "reclaim", @"stale TLB after mprotect: CPU \d's store to 0x[0-9a-f]+ \([^)]*\) succeeded after mprotect\(PROT_READ\) returned: reclaim had cleared the entry \(or, under rule \(d\), write-protected it\) and deferred its flush")]
    public void StressWithAKnobOffHuntsItsRaceAndNamesTheBug(string knob, string mix, string words)
    {
        string[] layout = knob == "LocklessPteRetry" ? ["--pte-layout", "SplitPae"] : [];
        var (code, output) = Engine(["stress", "--duration", "20", "--cpus", "4", "--frames", "8192", "--disable", knob, .. layout]);

        Assert.Equal(1, code);
        Assert.Contains($"targeted mix {mix}, perturbation on (seed 1:", output);
        Assert.Matches(@"verdict: FAIL after \d+\.\d+ s", output);
        Assert.Matches(words, output[output.IndexOf("verdict: FAIL", StringComparison.Ordinal)..]);
    }

    /// <summary>The same mixes and perturbation with every knob on find nothing (briefly here; 60 s runs in docs/engine.md).</summary>
    [Theory]
    [InlineData("tlb")]
    [InlineData("pin-fork")]
    [InlineData("ro-pin-fork")]
    [InlineData("torn-pte")]
    [InlineData("reclaim")]
    public void StressTargetedMixWithEveryKnobOnPasses(string mix)
    {
        var (code, output) = Engine("stress", "--duration", "1", "--cpus", "4", "--frames", "8192", "--mix", mix, "--pte-layout", mix == "torn-pte" ? "SplitPae" : "Native64");

        Assert.Equal(0, code);
        Assert.Contains("every protocol on; targeted mix " + mix + ", perturbation on", output);
        Assert.Contains("verdict: PASS", output);
    }

    /// <summary>
    /// A working set twice memory: the general mix on 2,048 pages with 1,024 frames, kswapd and direct reclaim swapping
    /// all along, every value checked through swap; the report and the JSON give the swap figures, and pages went both
    /// out and in (the runner's own guard says so too, but a pass must not rest on it alone).
    /// </summary>
    [Fact]
    public void StressUnderPressureSwapsEveryValueOutAndInAndPasses()
    {
        var json = Path.Combine(_traces, "pressure.json");
        var (code, output) = Engine("stress", "--duration", "2.5", "--cpus", "2", "--frames", "1024", "--working-set", "2", "--json", json);

        Assert.True(code == Passed, output);
        Assert.Contains("1024 frames, 4,480 swap slots, working set 2,048 pages (2x memory: 1,984 anonymous + 64 file)", output);
        Assert.Contains("verdict: PASS", output);
        Assert.Matches(@"swap: [\d,]+ swap-outs \([\d,]+/s\), [\d,]+ swap-ins \([\d,]+/s\), [\d,]+ swap-cache hits; reclaim: [\d,]+ pages scanned, [\d,]+ kept \(maybe pinned\)", output);
        Assert.Matches(@"kswapd woke [1-9][\d,]* times below 32 free frames and freed [1-9]", output);
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var swap = document.RootElement.GetProperty("Swap");
        Assert.True(swap.GetProperty("SwapOuts").GetInt64() > 0, swap.ToString());
        Assert.True(swap.GetProperty("SwapIns").GetInt64() > 0, swap.ToString());
        Assert.True(swap.GetProperty("SwapOutsPerSecond").GetDouble() > 0, swap.ToString());
        Assert.True(swap.GetProperty("SwapInsPerSecond").GetDouble() > 0, swap.ToString());
        Assert.Equal(2048, document.RootElement.GetProperty("WorkingSetPages").GetInt64());
        Assert.Equal(4480, document.RootElement.GetProperty("SwapSlots").GetInt32());
    }

    /// <summary>
    /// Large folios under each mapcount scheme: the region starts as folios and each CPU's folio regions are cut through
    /// (munmap, madvise, mprotect), forked over, pinned across a munmap and paged out; the report and the JSON give
    /// the folio figures, and folios were both mapped and split (the runner's own guard says so too, but a pass must
    /// not rest on it alone).
    /// </summary>
    [Theory]
    [InlineData("per-page")]
    [InlineData("mm-id")]
    public void StressWithLargeFoliosMapsAndSplitsThemAndPasses(string scheme)
    {
        var json = Path.Combine(_traces, $"folios-{scheme}.json");
        var (code, output) = Engine("stress", "--duration", "1", "--cpus", "2", "--frames", "2048", "--anon-folio-order", "2", "--mapcount", scheme, "--json", json);

        Assert.True(code == Passed, output);
        Assert.Contains($"2048 frames, 2,048 swap slots, folios of order 2 (16 KiB, {scheme} mapcounts)", output);
        Assert.Contains("| FolioRegion |", output);
        Assert.Matches(@"folios: [1-9][\d,]* large-folio faults \([\d,]+/s\), [\d,]+ fallbacks to one page, [\d,]+ large-folio reuses, [1-9][\d,]* splits, [\d,]+ refused; folio regions: [1-9]", output);
        Assert.Contains("verdict: PASS", output);
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        var folios = document.RootElement.GetProperty("Folios");
        Assert.Equal(2, folios.GetProperty("AnonFolioOrder").GetInt32());
        Assert.Equal(scheme, folios.GetProperty("Mapcount").GetString());
        Assert.True(folios.GetProperty("AnonFolioFaults").GetInt64() > 0, folios.ToString());
        Assert.True(folios.GetProperty("FolioSplits").GetInt64() > 0, folios.ToString());
        Assert.True(folios.GetProperty("Regions").GetProperty("PartialMunmap").GetInt64() > 0, folios.ToString());
    }

    /// <summary>
    /// <c>engine mapcount</c> restricted to one design with small budgets: every check runs (the zoo's entries whose
    /// copy-on-write rule MM ids cannot run are n/a, and so is no race: the MM-id slots' race exists under MM ids), the
    /// table has the design's column, and every cell is as expected.
    /// </summary>
    [Fact]
    public void MapcountComparesOneDesignPrintsTheTableAndExitsWithZero()
    {
        var (code, output) = Engine("mapcount", "--designs", "mm-id", "--seeds", "1", "--budget", "400", "--fixed-iterations", "200", "--race-iterations", "200", "--stress-seconds", "1");

        Assert.True(code == Passed, output);
        Assert.Contains("| check | mm-id (6.15) |", output);
        Assert.Contains("| zoo 1 missed-cow | n/a; holds |", output);
        Assert.Contains("| zoo 13 swap-missed-cow | n/a |", output);
        Assert.Contains("| zoo 17 estimated-sharers-reuse | closed; holds |", output);
        Assert.Contains("| zoo 6 lost-dirty | found 1/1; holds |", output);
        Assert.Contains("| cow.c base pages (36 rows) | 36/36 |", output);
        Assert.Contains("| cow.c large folios, order 4 (60 rows) | 60/60 |", output);
        Assert.Contains("| race mm-id-slots | 200 passed |", output);
        Assert.Contains("| stress, 1 s, folios of order 2 | pass |", output);
        Assert.DoesNotContain("per-page", output.Split('\n').Single(l => l.StartsWith("| check |", StringComparison.Ordinal)));
        Assert.Contains("Every cell as docs/mapcount.md expects", output);
    }

    /// <summary>
    /// A cell that differs from the expectations fails the run (exit code 1) and is named, with what was expected and
    /// what was found, and the table marks it in bold. The results are collected once, with budgets too small to mean
    /// anything, and compared with a table that expects a cow.c row to fail (it passes, whatever the budgets).
    /// </summary>
    [Fact]
    public void MapcountExitsWithOneAndNamesTheCellThatDiffers()
    {
        var settings = new MapcountSettings([MapcountDesign.Find("per-page")!], Seeds: 1, Budget: 20, FixedIterations: 20, RaceIterations: 20, StressSeconds: 1, Seed: 0, Parallel: 1);
        IReadOnlyDictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>>? results = null;
        Capture(() => (results = MapcountRunner.Collect(settings)).Count);
        var wrong = new MapcountExpectations([new("per-page", MapcountCheck.CowBasePage("basic COW after fork"), CheckOutcome.Fails, "a test's wrong expectation")]);

        var run = Capture(() => MapcountRunner.Report(settings, results!, wrong, TimeSpan.Zero));

        Assert.Equal(Failed, run.Code);
        Assert.Contains("| cow.c base pages (36 rows) | **36/36** |", run.Out);
        Assert.Contains("  per-page: cow.c \"basic COW after fork\": expected a failure, found a pass (pass)", run.Out);
        Assert.Contains("cell(s) differ from the expectations (listed above)", run.Error);
    }

    /// <summary>
    /// Budgets too small to meet the interleavings a fixed scenario names: those cells proved nothing, the run fails
    /// (a vacuous pass is no pass) and says which budgets to raise.
    /// </summary>
    [Fact]
    public void MapcountWithBudgetsTooSmallToProveAnythingSaysWhichToRaise()
    {
        var (code, output) = Engine("mapcount", "--designs", "per-page", "--seeds", "1", "--budget", "1", "--fixed-iterations", "1", "--race-iterations", "1", "--stress-seconds", "1");

        Assert.True(code == Failed, output);
        Assert.Contains("with the fix: expected a pass, found a run that proved nothing", output);
        Assert.Matches(@"\d+ of them proved nothing: the budgets were too small to meet every interleaving \(raise --fixed-iterations, --race-iterations or --stress-seconds\)\.", output);
    }

    /// <summary>
    /// Memory and swap both full is the settings' fault, not the machine's: the run says so and exits with 2. The command
    /// refuses fewer slots than a working set needs, so this calls the runner itself, with 64 slots for 1,024 pages.
    /// </summary>
    [Fact]
    public void StressThatRunsOutOfSwapSaysSoAndExitsWithTwo()
    {
        var options = new StressOptions(TimeSpan.FromSeconds(20), 2, 1, 512, PteLayout.Native64, null, [], SwapSlots: 64, WorkingSet: 2);
        var run = Capture(() => StressRunner.Run(options, null));

        Assert.True(run.Code == Usage, run.Out + run.Error);
        Assert.Matches(@"verdict: OUT OF SWAP after \d+\.\d s \(every check held; \d worker\(s\) found memory full and 64 of 64 swap slots in use", run.Out);
        Assert.Contains("stress: swap ran out (64 slots, all or nearly all in use when an allocation failed): give more --swap-slots", run.Error);
    }

    [Fact]
    public void StressWithPerturbationAndEveryKnobOnPassesTheGeneralMix()
    {
        var (code, output) = Engine("stress", "--duration", "3", "--cpus", "2", "--frames", "8192", "--perturb", "on");

        Assert.Equal(0, code);
        Assert.Contains("general mix, perturbation on (seed 1:", output);
        Assert.Contains("verdict: PASS", output);
    }

    [Fact]
    public void StressOverridesTheTargetedMixAndThePerturbation()
    {
        // --mix general keeps the general mix with a knob off (and so no perturbation); --perturb off a targeted mix's.
        var (_, general) = Engine("stress", "--duration", "0.3", "--cpus", "2", "--frames", "8192", "--disable", "NestedTlbFlush", "--mix", "general");
        Assert.Contains("off: NestedTlbFlush; general mix, no perturbation", general);
        var (_, quiet) = Engine("stress", "--duration", "0.3", "--cpus", "2", "--frames", "8192", "--mix", "pin-fork", "--perturb", "off");
        Assert.Contains("targeted mix pin-fork, no perturbation", quiet);
        Assert.Equal(2, Engine("stress", "--mix", "torn-pte").Code);
        Assert.Equal(2, Engine("stress", "--mix", "nosuch").Code);
        Assert.Equal(2, Engine("stress", "--perturb", "sometimes").Code);
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

        // Coyote reads its own schedule inside the trace: a corrupt one is a corrupt trace, not a bug of the program.
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(trace))!;
        json["SchedulerTrace"] = "{\"Steps\": 5}";
        var corrupt = Path.Combine(_traces, "corrupt-coyote.json");
        File.WriteAllText(corrupt, json.ToJsonString());
        var refused = Run("replay", corrupt);
        Assert.Equal(Usage, refused.Code);
        Assert.Contains("Coyote cannot read the trace's schedule", Assert.Single(refused.Error.Trim().Split('\n')));
        Assert.DoesNotContain("   at ", refused.Out + refused.Error);
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
        var (code, output) = Engine("zoo", "--scheduler", "coyote", "--entry", "7", "--report", "--trace-dir", _traces);
        Assert.Equal(0, code);
        Assert.Contains("Explored by the coyote scheduler.", output);
        var trace = CommandAfter(output, "to replay: engine replay ");
        Assert.Equal([Assert.Single(Directory.GetFiles(_traces, "*-coyote-*.json"))], trace);

        var (again, replayed) = Engine(["replay", .. trace]);
        Assert.Equal(1, again);
        Assert.Contains("Replayed by the Coyote scheduler.", replayed);
        Assert.Contains("use-after-free through a stale TLB entry", replayed);

        // The one-line string is the same schedule for the built-in scheduler, with the scenario it names.
        var (followed, builtin) = Engine(["replay", .. CommandAfter(output, "or: engine replay ")]);
        Assert.Equal(1, followed);
        Assert.Contains("Replayed by the built-in scheduler.", builtin);
        Assert.Contains("use-after-free through a stale TLB entry", builtin);
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

    /// <summary>
    /// A user's mistakes, one class of bad input per row: each is refused before any work starts (nothing on stdout),
    /// with one line on stderr that names what was wrong, exit code 2 and no stack trace. Placeholders stand for files
    /// the test makes: {dir} a folder, {file} a plain file, {missing} a path that does not exist, {notnet} a file that
    /// is no assembly, {assembly} ClassicBugs.dll, {trunc}/{empty}/{noformat}/{steps0} broken traces, {builtin} a
    /// trace of the built-in scheduler, {string} a well-formed replay string.
    /// </summary>
    [Theory]
    // stress: the machine's limits, the run's own minimum, durations, layouts, knobs, output paths, the parser's cases
    [InlineData("--cpus", "stress", "--cpus", "0")]
    [InlineData("--cpus", "stress", "--cpus", "65")]
    [InlineData("--cpus", "stress", "--cpus", "-1")]
    [InlineData("--cpus", "stress", "--cpus", "many")]
    [InlineData("--cpus", "stress", "--cpus", "99999999999")]
    [InlineData("--cpus", "stress", "--cpus", "2", "--cpus", "3")]
    [InlineData("--frames", "stress", "--frames", "1")]
    [InlineData("--frames", "stress", "--frames", "2147483647")]
    [InlineData("--frames", "stress", "--cpus", "1", "--frames", "200")]
    [InlineData("--duration", "stress", "--duration", "NaN")]
    [InlineData("--duration", "stress", "--duration", "Infinity")]
    [InlineData("--duration", "stress", "--duration", "1e300")]
    [InlineData("--duration", "stress", "--duration", "0")]
    [InlineData("--duration", "stress", "--duration", "-1")]
    [InlineData("--duration", "stress", "--duration", "")]
    [InlineData("--duration", "stress", "--duration")]
    [InlineData("--pte-layout", "stress", "--pte-layout", "Pae")]
    [InlineData("--proposal", "stress", "--proposal", "rule-x")]
    [InlineData("--proposal", "zoo", "--proposal", "nope")]
    [InlineData("--json", "stress", "--json", "{dir}")]
    [InlineData("--json", "stress", "--json", "{file}/results.json")]
    [InlineData("--json", "stress", "--json", "")]
    [InlineData("--disable", "stress", "--disable", "NoSuchKnob")]
    [InlineData("--swap-slots", "stress", "--swap-slots", "-1")]
    [InlineData("--swap-slots", "stress", "--swap-slots", "many")]
    [InlineData("--swap-slots", "stress", "--swap-slots", "1.5")]
    [InlineData("--swap-slots", "stress", "--swap-slots", "67108865")]
    [InlineData("--swap-slots", "stress", "--swap-slots")]
    [InlineData("needs at least 1,664 swap slots", "stress", "--frames", "1024", "--working-set", "2", "--swap-slots", "1000")]
    [InlineData("needs at least 1,408 swap slots", "stress", "--cpus", "2", "--frames", "1024", "--working-set", "2", "--swap-slots", "0")]
    [InlineData("--working-set", "stress", "--working-set", "0")]
    [InlineData("--working-set", "stress", "--working-set", "-2")]
    [InlineData("--working-set", "stress", "--working-set", "NaN")]
    [InlineData("--working-set", "stress", "--working-set", "Infinity")]
    [InlineData("--working-set", "stress", "--working-set", "17")]
    [InlineData("--working-set", "stress", "--working-set", "twice")]
    [InlineData("--working-set", "stress", "--working-set")]
    [InlineData("--working-set applies to the general mix", "stress", "--working-set", "2", "--mix", "tlb")]
    [InlineData("--mix reclaim needs swap", "stress", "--mix", "reclaim", "--swap-slots", "0")]
    [InlineData("--anon-folio-order", "stress", "--anon-folio-order", "10")]
    [InlineData("--anon-folio-order", "stress", "--anon-folio-order", "-1")]
    [InlineData("--anon-folio-order", "stress", "--anon-folio-order", "two")]
    [InlineData("--anon-folio-order", "stress", "--anon-folio-order", "1.5")]
    [InlineData("--anon-folio-order", "stress", "--anon-folio-order")]
    [InlineData("--anon-folio-order: Folios of order 9 (512 frames) need at least 2048 frames", "stress", "--cpus", "1", "--frames", "1024", "--anon-folio-order", "9")]
    [InlineData("needs at least 6,780 frames (128 + 128 per CPU, and three folios of 512 frames per CPU)", "stress", "--frames", "4096", "--anon-folio-order", "9")]
    [InlineData("--anon-folio-order applies to the general mix", "stress", "--anon-folio-order", "2", "--mix", "tlb")]
    [InlineData("--anon-folio-order applies to the general mix", "stress", "--anon-folio-order", "2", "--disable", "DelayRmap")]
    [InlineData("--mapcount must be per-page, mm-id, tri-state or none (got 'nosuch')", "stress", "--anon-folio-order", "2", "--mapcount", "nosuch")]
    [InlineData("--mapcount", "stress", "--anon-folio-order", "2", "--mapcount")]
    [InlineData("--mapcount mm-id counts the mappings of large folios", "stress", "--mapcount", "mm-id")]
    [InlineData("--nosuch", "stress", "--nosuch")]
    // test: the assembly, every number, the strategies and bounds of both schedulers, the trace folder
    [InlineData("test assembly", "test", "{missing}")]
    [InlineData("test assembly", "test", "")]
    [InlineData("folder", "test", "{dir}")]
    [InlineData("not a .NET assembly", "test", "{notnet}")]
    [InlineData("Required argument missing", "test")]
    [InlineData("--iterations", "test", "{assembly}", "--iterations", "0")]
    [InlineData("--iterations", "test", "{assembly}", "--iterations", "1.5")]
    [InlineData("--iterations", "test", "{assembly}", "--iterations", "many")]
    [InlineData("--max-steps", "test", "{assembly}", "--max-steps", "0")]
    [InlineData("--parallel", "test", "{assembly}", "--parallel", "0")]
    [InlineData("--parallel", "test", "{assembly}", "--parallel", "257")]
    [InlineData("--parallel", "test", "{assembly}", "--scheduler", "coyote", "--parallel", "2")]
    [InlineData("takes no bound", "test", "{assembly}", "--strategy", "random", "--bound", "3")]
    [InlineData("takes no bound", "test", "{assembly}", "--scheduler", "coyote", "--strategy", "random", "--bound", "3")]
    [InlineData("unknown strategy", "test", "{assembly}", "--strategy", "nosuch")]
    [InlineData("Coyote strategy", "test", "{assembly}", "--scheduler", "coyote", "--strategy", "pct")]
    [InlineData("--bound", "test", "{assembly}", "--strategy", "pct", "--bound", "5000")]
    [InlineData("--bound", "test", "{assembly}", "--strategy", "probabilistic", "--bound", "64")]
    [InlineData("--bound", "test", "{assembly}", "--strategy", "dfs", "--bound", "0")]
    [InlineData("--scheduler", "test", "{assembly}", "--scheduler", "")]
    [InlineData("--seed", "test", "{assembly}", "--seed", "abc")]
    [InlineData("--trace-dir", "test", "{assembly}", "--trace-dir", "{file}")]
    [InlineData("--trace-dir", "test", "{assembly}", "--trace-dir", "{file}/sub")]
    [InlineData("--trace-dir", "test", "{assembly}", "--trace-dir", "")]
    [InlineData("NoSuch.Test", "test", "{assembly}", "--method", "NoSuch.Test")]
    // zoo
    [InlineData("--seeds", "zoo", "--seeds", "0")]
    [InlineData("--seeds", "zoo", "--entry", "7", "--seeds", "-1")]
    [InlineData("--seeds", "zoo", "--entry", "7", "--report", "--seeds", "0")]
    [InlineData("--budget", "zoo", "--budget", "lots")]
    [InlineData("--fixed-iterations", "zoo", "--fixed-iterations", "0")]
    [InlineData("--parallel", "zoo", "--parallel", "0")]
    [InlineData("--parallel", "zoo", "--scheduler", "coyote", "--parallel", "2")]
    [InlineData("--entry", "zoo", "--entry", "")]
    [InlineData("--entry", "zoo", "--entry", "no-such-bug")]
    [InlineData("--report needs --entry", "zoo", "--report")]
    [InlineData("--trace-dir", "zoo", "--entry", "7", "--trace-dir", "{dir}")]
    [InlineData("--trace-dir", "zoo", "--entry", "7", "--report", "--trace-dir", "{file}")]
    [InlineData("--scheduler", "zoo", "--scheduler", "nope")]
    [InlineData("--chrome-trace", "zoo", "--entry", "7", "--report", "--chrome-trace", "{dir}")]
    [InlineData("--chrome-trace", "zoo", "--entry", "7", "--report", "--chrome-trace", "{file}/sub.json")]
    [InlineData("--chrome-trace", "zoo", "--entry", "7", "--report", "--chrome-trace", "")]
    [InlineData("--steps and --chrome-trace apply to --report", "zoo", "--entry", "7", "--steps")]
    [InlineData("--chrome-trace", "test", "{assembly}", "--chrome-trace", "{dir}")]
    [InlineData("--chrome-trace", "replay", "sys1:AAAA", "--chrome-trace", "{file}/x.json")]
    [InlineData("--bound", "zoo", "--bound", "0")]
    [InlineData("prioritization", "zoo", "--strategy", "prioritization")]
    [InlineData("pct", "zoo", "--scheduler", "coyote", "--strategy", "pct")]
    // mapcount: the designs, every budget, the seed
    [InlineData("--designs: no design 'page'", "mapcount", "--designs", "page")]
    [InlineData("--designs: no design ''", "mapcount", "--designs", "mm-id,,none")]
    [InlineData("--designs needs at least one design", "mapcount", "--designs", "")]
    [InlineData("--designs: mm-id is named twice", "mapcount", "--designs", "mm-id,none,MM-ID")]
    [InlineData("--designs", "mapcount", "--designs")]
    [InlineData("--seeds", "mapcount", "--seeds", "0")]
    [InlineData("--seeds", "mapcount", "--seeds", "1001")]
    [InlineData("--budget", "mapcount", "--budget", "lots")]
    [InlineData("--fixed-iterations", "mapcount", "--fixed-iterations", "0")]
    [InlineData("--race-iterations", "mapcount", "--race-iterations", "-5")]
    [InlineData("--race-iterations", "mapcount", "--race-iterations", "1.5")]
    [InlineData("--stress-seconds", "mapcount", "--stress-seconds", "0")]
    [InlineData("--stress-seconds", "mapcount", "--stress-seconds", "NaN")]
    [InlineData("--seed", "mapcount", "--seed", "-1")]
    [InlineData("--seed", "mapcount", "--seed", "x")]
    [InlineData("--parallel", "mapcount", "--parallel", "0")]
    [InlineData("--nosuch", "mapcount", "--nosuch")]
    // classics and compare
    [InlineData("--seeds", "classics", "--seeds", "0")]
    [InlineData("--budget", "classics", "--budget", "0")]
    [InlineData("--correct-iterations", "classics", "--correct-iterations", "-1")]
    [InlineData("--only", "classics", "--only", "nosuch")]
    [InlineData("--only", "classics", "--only", "")]
    [InlineData("--scheduler", "classics", "--scheduler", "nope")]
    [InlineData("--strategy", "classics", "--strategy", "random")]
    [InlineData("--seeds", "compare", "--seeds", "0")]
    [InlineData("--only", "compare", "--only", "no-such-scenario")]
    [InlineData("--only", "compare", "--only", "")]
    // replay: strings, trace files, the test to run, the scheduler
    [InlineData("empty string", "replay", "")]
    [InlineData("sys1:", "replay", "sys1:")]
    [InlineData("not-base64", "replay", "sys1:not-base64!!")]
    [InlineData("sys1:AAAA", "replay", "sys1:AAAA", "--assembly", "{assembly}", "--method", "LostUpdate.Buggy")]
    [InlineData("--scenario", "replay", "{string}")]
    [InlineData("--scenario", "replay", "{string}", "--scenario", "no-such-scenario")]
    [InlineData("--scenario", "replay", "{string}", "--scenario", "lost-update-buggy", "--method", "LostUpdate.Buggy")]
    [InlineData("Coyote", "replay", "{string}", "--scheduler", "coyote")]
    [InlineData("--scheduler", "replay", "{string}", "--scheduler", "nope")]
    [InlineData("folder", "replay", "{dir}")]
    [InlineData("neither a trace file nor a replay string", "replay", "{missing}")]
    [InlineData("not a trace", "replay", "{trunc}")]
    [InlineData("not a trace", "replay", "{empty}")]
    [InlineData("not a trace", "replay", "{noformat}")]
    [InlineData("not a trace", "replay", "{steps0}")]
    [InlineData("not a trace", "replay", "{notnet}")]
    [InlineData("--scheduler builtin", "replay", "{builtin}", "--scheduler", "coyote")]
    [InlineData("NoSuch", "replay", "{builtin}", "--assembly", "{assembly}", "--method", "NoSuch")]
    // the command itself
    [InlineData("Required command")]
    [InlineData("no-such-command", "no-such-command")]
    [InlineData("--nosuch", "--nosuch")]
    public void AMistakeIsOneLineOnStderrAndExitCodeTwoBeforeAnyWork(string named, params string[] args)
    {
        var run = Run(args.Select(Fill).ToArray());

        Assert.True(run.Code == Usage, $"exit code {run.Code}: {run.Out}{run.Error}");
        Assert.DoesNotContain("   at ", run.Out + run.Error);
        Assert.Equal("", run.Out);
        var line = Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(named, line, StringComparison.Ordinal);
    }

    [Fact]
    public void TheHelpStatesTheExitCodes()
    {
        var (code, help) = Engine("--help");
        Assert.Equal(Passed, code);
        Assert.Contains("Exit codes: 0 passed", help);
        Assert.Contains("2 the input was wrong", help);
        Assert.Contains("3 a replay diverged", help);
        foreach (var command in new[] { "stress", "zoo", "mapcount", "classics", "compare", "test", "replay" })
        {
            Assert.Contains("Exit codes: 0", Engine(command, "--help").Output);
        }
    }

    [Theory]
    [InlineData("builtin")]
    [InlineData("coyote")]
    public void ATestWhoseEveryIterationIsCutAtTheStepBoundExploredNothingAndExitsWithTwo(string scheduler)
    {
        var run = Run("test", _assembly, "--method", "LostUpdate.Correct", "--iterations", "50", "--max-steps", "1", "--scheduler", scheduler);

        Assert.Equal(Usage, run.Code);
        Assert.Contains("50 of 50 iteration(s) were cut at the step bound of 1", run.Out);
        Assert.Contains("Nothing explored: every iteration of ClassicBugs.LostUpdate.Correct was cut at the step bound of 1", Assert.Single(run.Error.Trim().Split('\n')));
    }

    [Fact]
    public void IterationsCutAtTheStepBoundAreCountedAndReported()
    {
        // Ten steps finish some of lost-update's schedules, not all (the built-in scheduler's seeds make this exact).
        var run = Run("test", _assembly, "--method", "LostUpdate.Correct", "--iterations", "50", "--max-steps", "10");

        Assert.Equal(Passed, run.Code);
        Assert.Matches(@"  [1-9][0-9]? of 50 iteration\(s\) were cut at the step bound of 10 \(--max-steps\)", run.Out);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public void StressRefusesAnUnwritableJsonPathBeforeItRuns()
    {
        // Before, the run went its full course, printed PASS, then crashed writing the file and lost the results.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var run = Run("stress", "--duration", "30", "--json", Path.Combine(_traces, "no-such-folder", "results.json"));

        Assert.Equal(Usage, run.Code);
        Assert.Equal("", run.Out);
        Assert.StartsWith("--json: cannot write", run.Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void ZooReportPrintsTheCommandsThatReplayItAndTheyDo()
    {
        var (code, output) = Engine("zoo", "--entry", "ro-pin-unshare", "--report", "--trace-dir", _traces);
        Assert.Equal(Passed, code);
        var replayTrace = CommandAfter(output, "to replay: engine replay ");
        var replayString = CommandAfter(output, "or: engine replay ");
        Assert.Equal([Assert.Single(Directory.GetFiles(_traces, "*.json"))], replayTrace);
        Assert.Equal(["--scenario", "ro-pin-unshare-buggy"], replayString[1..]);

        // The trace names its entry and setting; the string needs the option printed after it.
        foreach (var replay in new[] { replayTrace, replayString })
        {
            var (again, replayed) = Engine(["replay", .. replay]);
            Assert.Equal(Failed, again);
            Assert.Contains("Reproduced:", replayed);
            Assert.Contains("the R/O pin of 0x1000000000 reads", replayed);
        }

        // The same schedule against the entry with its fix is another program: the replay says where it parted.
        var (fixedCode, fixedRun) = Engine("replay", replayString[0], "--scenario", "ro-pin-unshare-fixed");
        Assert.Equal(Diverged, fixedCode);
        Assert.Contains("DIVERGED: step", fixedRun);
    }

    /// <summary>The words of the command printed after <paramref name="prefix"/>, as a POSIX shell splits them.</summary>
    private static string[] CommandAfter(string output, string prefix)
    {
        var line = output.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..];
        var words = new List<string>();
        var word = new System.Text.StringBuilder();
        var quoted = false;
        foreach (var c in line)
        {
            if (c == '\'')
            {
                quoted = !quoted;
            }
            else if (c == ' ' && !quoted)
            {
                words.Add(word.ToString());
                word.Clear();
            }
            else
            {
                word.Append(c);
            }
        }

        words.Add(word.ToString());
        return [.. words.Where(w => w.Length > 0)];
    }

    /// <summary>Replaces a placeholder of <see cref="AMistakeIsOneLineOnStderrAndExitCodeTwoBeforeAnyWork"/> by the file it stands for.</summary>
    private string Fill(string arg)
    {
        string Write(string name, string content)
        {
            var path = Path.Combine(_traces, name);
            File.WriteAllText(path, content);
            return path;
        }

        const string Format = "\"Format\":\"engine-systematic-trace/1\"";
        var steps = Enumerable.Range(0, 3).Select(i => new TraceStep(i, DecisionKind.Schedule, 0, 0, 0, default, "", 0, -1, 0, false)).ToList();
        return arg switch
        {
            "{dir}" => _traces,
            "{file}" => Write("plain.txt", "not a folder"),
            "{file}/results.json" => Path.Combine(Write("plain.txt", "not a folder"), "results.json"),
            "{file}/sub" => Path.Combine(Write("plain.txt", "not a folder"), "sub"),
            "{missing}" => Path.Combine(_traces, "missing", "nothing.dll"),
            "{notnet}" => Write("notnet.dll", "MZ but not really"),
            "{assembly}" => _assembly,
            "{trunc}" => Write("trunc.json", "{" + Format + ",\"MaxSteps\":10,\"Steps\":["),
            "{empty}" => Write("empty.json", ""),
            "{noformat}" => Write("noformat.json", "{}"),
            "{steps0}" => Write("steps0.json", "{" + Format + ",\"MaxSteps\":0,\"Steps\":[]}"),
            "{builtin}" => Write("builtin.json", "{" + Format + ",\"Test\":\"lost-update-buggy\",\"MaxSteps\":10,\"Steps\":[]}"),
            "{string}" => ReplayString.Encode(steps, 10, hangIsBug: false),
            _ => arg,
        };
    }

    private static (int Code, string Output) Engine(params string[] args)
    {
        var run = Run(args);
        return (run.Code, run.Out + run.Error);
    }

    /// <summary>Runs the command in-process; stdout and stderr apart.</summary>
    private static CommandRun Run(params string[] args) => Capture(() => EngineCommandLine.Run(args));

    /// <summary>Runs <paramref name="body"/> with stdout and stderr captured apart.</summary>
    private static CommandRun Capture(Func<int> body)
    {
        var original = Console.Out;
        var originalError = Console.Error;
        using var output = new StringWriter();
        using var error = new StringWriter();
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            var code = body();
            return new CommandRun(code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(original);
            Console.SetError(originalError);
        }
    }

    private sealed record CommandRun(int Code, string Out, string Error);
}
