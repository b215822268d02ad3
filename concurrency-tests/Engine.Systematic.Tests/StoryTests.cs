using System.Text.Json;
using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>
/// Protocol events (<see cref="ProtocolEvents.Mark"/>): recorded by the scheduler in schedule order without changing the
/// schedule, told as a story (<see cref="StoryView"/>) and exported as a Chrome trace (<see cref="ChromeTrace"/>).
/// </summary>
public sealed class StoryTests
{
    /// <summary>
    /// Two "CPUs" each read a page's count and write it back plus one, marking each step: the lost update of a
    /// refcount, told in events. The assertion names the page, as the engine's do.
    /// </summary>
    private static Action LostGet(bool mark) => () =>
    {
        var count = 1;
        void Get(long pfn)
        {
            var seen = Atomic.Read(ref count);
            if (mark)
            {
                ProtocolEvents.Mark("get_page", "pfn 0x{0:x}: read refcount {2}", pfn, value: seen);
            }

            Atomic.Write(ref count, seen + 1);
            if (mark)
            {
                ProtocolEvents.Mark("get_page", "pfn 0x{0:x}: write refcount {2} -> {3}", pfn, value: seen, value2: seen + 1);
            }
        }

        var other = ControlledThread.Start(() => Get(0x2a), "cpu1");
        if (mark)
        {
            ProtocolEvents.Mark("unrelated", "a step on another page, pfn 0x{0:x}", 0x99, 0x7f00_0000_1000);
        }

        Get(0x2a);
        other.Join();
        var final = Atomic.Read(ref count);
        Specification.Assert(final == 3, $"pfn 0x2a: refcount {final} after two gets from 1: an increment was lost");
    };

    private static BugReport Find(Action body)
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000).WithSeed(7).WithTraceFiles(false), body);
        return Assert.Single(report.Bugs);
    }

    [Fact]
    public void EventsAreRecordedInScheduleOrderOnTheThreadThatMarkedThem()
    {
        var bug = Find(LostGet(mark: true));
        var events = bug.Trace.Events;

        Assert.Equal(5, events.Count);
        Assert.Equal(2, events.Count(e => e.Thread == 0 && e.Function == "get_page"));
        Assert.Equal(2, events.Count(e => e.Thread == 1 && e.Function == "get_page"));
        Assert.All(events, e => Assert.InRange(e.Step, -1, bug.Trace.Steps.Count - 1));
        Assert.Equal(events.OrderBy(e => e.Step).Select(e => e.Step), events.Select(e => e.Step));

        // Each event follows a decision that ran its thread (or none, at the start of main).
        Assert.All(events.Where(e => e.Step >= 0), e => Assert.Equal(e.Thread, bug.Trace.Steps[e.Step].Thread));

        // The lost update itself: both reads saw 1 before either write.
        var reads = events.Where(e => e.What.Contains("read", StringComparison.Ordinal)).ToList();
        Assert.All(reads, e => Assert.Equal(1, e.Value));
        Assert.Equal("get_page: pfn 0x2a: write refcount 1 -> 2", events.Last(e => e.Function == "get_page").ToString());
    }

    [Fact]
    public void MarkingEventsChangesNoSchedule()
    {
        var marked = Find(LostGet(mark: true));
        var plain = Find(LostGet(mark: false));

        Assert.Equal(plain.Iteration, marked.Iteration);
        Assert.Equal(plain.ReplayString, marked.ReplayString);
        Assert.Empty(plain.Trace.Events);

        // Replay records the same events again.
        var replayed = Assert.Single(TestingEngine.Replay(marked.ReplayString, LostGet(mark: true)).Bugs);
        Assert.Equal(marked.Trace.Events, replayed.Trace.Events);
    }

    [Fact]
    public void TheStoryPutsEachEventInItsThreadsColumnAndMarksTheEventsOnTheFailingPage()
    {
        var bug = Find(LostGet(mark: true));
        var story = bug.Trace.ToStory();
        var lines = story.Split('\n');
        var header = lines[0];
        var cpu1 = header.IndexOf("T1 cpu1", StringComparison.Ordinal);
        Assert.True(cpu1 > 0, story);

        // Row by row, in schedule order: each event in its thread's column.
        var next = 2;
        foreach (var e in bug.Trace.Events)
        {
            while (!lines[next].Contains(e.ToString(), StringComparison.Ordinal))
            {
                next++;
            }

            var at = lines[next].IndexOf(e.Function, StringComparison.Ordinal);
            Assert.True(e.Thread == 1 ? at > cpu1 : at < cpu1, $"{e} is in the wrong column:\n{story}");
            next++;
        }

        // The events on pfn 0x2a (named by the assertion) are marked; the one on another page is not.
        Assert.Equal(4, lines.Count(l => l.Contains("> get_page", StringComparison.Ordinal)));
        Assert.DoesNotContain("> unrelated", story);
        Assert.Contains("> = an event on pfn 0x2a", story);
        Assert.Contains("=> Assertion:", story);

        // The report prints the story, not the table, for code that marks events.
        Assert.Contains(story.TrimEnd(), bug.ToString());
        Assert.DoesNotContain("Read StoryTests.cs", bug.ToString());
    }

    [Fact]
    public void WithStepsTheLowLevelStepsAreShownUnderTheirEvents()
    {
        var bug = Find(LostGet(mark: true));
        var story = bug.Trace.ToStory(new StoryOptions { ShowSteps = true });

        Assert.Contains(". Read StoryTests.cs:", story);
        Assert.Contains(". Write StoryTests.cs:", story);
        var read = story.IndexOf(". Read StoryTests.cs:", StringComparison.Ordinal);
        var firstEvent = story.IndexOf("get_page: pfn 0x2a: read refcount", StringComparison.Ordinal);
        Assert.True(read < firstEvent, "a step is shown after the event it led to");
        Assert.Contains(bug.ToString(), bug.Format(null));
        Assert.Contains(". Read StoryTests.cs:", bug.Format(new StoryOptions { ShowSteps = true }));
    }

    [Fact]
    public void ALongStoryIsCutAroundTheEventsOnTheFailingObjects()
    {
        var events = new List<TraceEvent>();
        var steps = new List<TraceStep>();
        for (var i = 0; i < 200; i++)
        {
            var thread = i % 40 < 20 ? 0 : 1;
            steps.Add(new TraceStep(i, DecisionKind.Schedule, thread, thread, 0, OperationKind.Read, "x.cs", i, -1, 0, false));
            var pfn = i == 37 ? 0x2aL : 0x10 + (i % 7);
            events.Add(new TraceEvent(i, thread, "step_" + (i % 3), "pfn 0x{0:x}", pfn, 0, 0, 0));
        }

        var trace = new ScheduleTrace
        {
            Threads = ["main", "other"],
            Steps = steps,
            Events = events,
            BugKind = BugKind.Assertion,
            BugMessage = "pfn 0x2a is broken",
        };
        var story = trace.ToStory(new StoryOptions { MaxRows = 20 });

        Assert.Contains("> step_1: pfn 0x2a", story);
        Assert.Contains("not shown", story);
        Assert.Contains("step_1: pfn 0x13", story); // the last event (199 % 3 == 1, 0x10 + 199 % 7)
        Assert.InRange(story.Split('\n').Count(l => l.Contains(" | ", StringComparison.Ordinal)), 20, 24);

        // Given explicitly, the subjects replace those of the message.
        var other = trace.ToStory(new StoryOptions { MaxRows = 20, Pfns = [0x11] });
        Assert.Contains("> step_", other);
        Assert.DoesNotContain("> step_1: pfn 0x2a", other);
    }

    [Fact]
    public void AThreadsConsecutiveEventsOfOneKindAreFolded()
    {
        var steps = new List<TraceStep> { new(0, DecisionKind.Schedule, 0, 0, 0, OperationKind.Read, "x.cs", 1, -1, 0, false) };
        var events = Enumerable.Range(0, 8).Select(i => new TraceEvent(0, 0, "zap_pte_range", "clear pte at 0x{1:x}: was pfn 0x{0:x}", 0x20 + i, 0x10_0000_0000UL + ((ulong)i << 12), 0, 0)).ToList();
        var story = new ScheduleTrace { Threads = ["main"], Steps = steps, Events = events }.ToStory();

        Assert.Contains("1-8 | zap_pte_range:", story);
        Assert.Contains("zap_pte_range: clear pte at 0x1000000000: was pfn 0x20 ... x8, the last: clear pte at 0x1000007000: was pfn 0x27", Unwrapped(story));
        Assert.Single(story.Split('\n'), l => l.Contains("zap_pte_range", StringComparison.Ordinal));
    }

    /// <summary>The cells of a one-column story joined into one line: what a wrapped row says.</summary>
    private static string Unwrapped(string story)
        => string.Join(" ", story.Split('\n').Skip(2).Where(l => l.Contains(" | ", StringComparison.Ordinal)).Select(l => l[(l.IndexOf(" | ", StringComparison.Ordinal) + 3)..].Trim()));

    [Fact]
    public void TheCpusFormatPrintsAMaskAsASet()
    {
        Assert.Equal("shootdown on cpus {0,2,63}", new ProtocolEvent("flush_tlb_mm_range", "shootdown on cpus {2:cpus}", -1, 0, unchecked((long)((1UL << 63) | 5)), 0).Describe());
        Assert.Equal("on cpus {}", new ProtocolEvent("f", "on cpus {2:cpus}", -1, 0, 0, 0).Describe());
    }

    [Fact]
    public void TheChromeTraceHasATrackPerThreadAndNestsEachEventInTheStepItFollows()
    {
        var bug = Find(LostGet(mark: true));
        using var document = JsonDocument.Parse(bug.Trace.ToChromeTrace());
        var all = document.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();

        var names = all.Where(e => e.GetProperty("name").GetString() == "thread_name").ToDictionary(e => e.GetProperty("tid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
        Assert.Equal(["T0 main", "T1 cpu1"], names.OrderBy(p => p.Key).Select(p => p.Value));

        var slices = all.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        var steps = slices.Where(e => e.GetProperty("cat").GetString() == "step").ToList();
        var events = slices.Where(e => e.GetProperty("cat").GetString() == "event").ToList();
        Assert.Equal(bug.Trace.Steps.Count, steps.Count);
        Assert.Equal(bug.Trace.Events.Count, events.Count);
        Assert.All(slices, e =>
        {
            Assert.Equal(1, e.GetProperty("pid").GetInt32());
            Assert.InRange(e.GetProperty("tid").GetInt32(), 0, 1);
            Assert.True(e.GetProperty("dur").GetDouble() > 0);
        });

        foreach (var e in events)
        {
            var ts = e.GetProperty("ts").GetDouble();
            var step = e.GetProperty("args").GetProperty("after_step").GetInt32();
            Assert.InRange(ts, Math.Max(step, 0), Math.Max(step, 0) + 1);
            Assert.InRange(ts + e.GetProperty("dur").GetDouble(), Math.Max(step, 0), Math.Max(step, 0) + 1);
            if (step >= 0)
            {
                // Nested in its step's slice: same track, inside [step, step + 1).
                var parent = steps.Single(s => s.GetProperty("ts").GetDouble() == step);
                Assert.Equal(parent.GetProperty("tid").GetInt32(), e.GetProperty("tid").GetInt32());
            }
        }

        Assert.Contains(events, e => e.GetProperty("args").GetProperty("what").GetString() == "pfn 0x2a: read refcount 1"
            && e.GetProperty("args").GetProperty("pfn").GetString() == "0x2a");
        Assert.Single(all, e => e.GetProperty("ph").GetString() == "i" && e.GetProperty("cat").GetString() == "bug");
    }

    [Fact]
    public void EventsSurviveTheJsonTrace()
    {
        var bug = Find(LostGet(mark: true));
        var loaded = ScheduleTrace.FromJson(bug.Trace.ToJson());
        Assert.Equal(bug.Trace.Events, loaded.Events);
    }
}
