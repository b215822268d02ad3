using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Systematic;

/// <summary>
/// A complete record of one iteration: every setting that shaped it and every decision, each with the operation it
/// led to and that operation's source location. Saved as JSON next to each bug, loaded by
/// <see cref="TestingEngine.ReplayFile"/> and by <c>engine replay</c>.
/// </summary>
public sealed class ScheduleTrace
{
    /// <summary>The format tag written into every trace file.</summary>
    public const string CurrentFormat = "engine-systematic-trace/1";

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Always <see cref="CurrentFormat"/>; a file without it is not a trace.</summary>
    [JsonRequired]
    public string Format { get; init; } = CurrentFormat;

    /// <summary>The test's name, when the caller gave one.</summary>
    public string? Test { get; init; }

    /// <summary>The assembly holding the test, when known (set by <c>engine test</c>).</summary>
    public string? TestAssembly { get; init; }

    /// <summary>The scheduler that found the schedule, when it was not the built-in one (<c>coyote</c>).</summary>
    public string? Scheduler { get; init; }

    /// <summary>
    /// The schedule in the finding scheduler's own format, when it was not the built-in one: Coyote's reproducible
    /// trace, which <c>engine replay</c> hands back to Coyote. <see cref="Steps"/> holds the same schedule as the
    /// built-in scheduler records it, so either scheduler can replay it.
    /// </summary>
    public string? SchedulerTrace { get; init; }

    /// <summary>The strategy that produced the schedule (for a minimised one, the strategy of the original).</summary>
    public string Strategy { get; init; } = "";

    /// <summary>The run's global seed.</summary>
    public long Seed { get; init; }

    /// <summary>The iteration that produced the schedule.</summary>
    public int Iteration { get; init; }

    /// <summary>The iteration's own seed, derived from <see cref="Seed"/> and <see cref="Iteration"/>.</summary>
    public ulong IterationSeed { get; init; }

    /// <summary>The step bound of the run.</summary>
    public int MaxSteps { get; init; }

    /// <summary>Whether reaching <see cref="MaxSteps"/> was reported as a bug.</summary>
    public bool HangIsBug { get; init; }

    /// <summary>Every setting of the run, by name.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>The bug the schedule leads to, if any.</summary>
    public BugKind? BugKind { get; init; }

    /// <summary>The bug's message, if any.</summary>
    public string? BugMessage { get; init; }

    /// <summary>The kind of bug its assertion stated (<see cref="BugReport.Category"/>), if any.</summary>
    public string? BugCategory { get; init; }

    /// <summary>Thread names, indexed by thread id.</summary>
    public IReadOnlyList<string> Threads { get; init; } = [];

    /// <summary>Every decision, in order.</summary>
    public IReadOnlyList<TraceStep> Steps { get; init; } = [];

    /// <summary>
    /// The protocol events the code marked, in the order they happened, each after the decision it follows
    /// (<see cref="TraceEvent.Step"/>). Not needed to replay: replay records them again.
    /// </summary>
    public IReadOnlyList<TraceEvent> Events { get; init; } = [];

    /// <summary>Number of decisions that preempted a thread that could have gone on.</summary>
    [JsonIgnore]
    public int Preemptions => Steps.Count(s => s.Preemption);

    /// <summary>How many threads the schedule involves: the named ones and any a step or an event names beyond them.</summary>
    [JsonIgnore]
    public int ThreadCount => Math.Max(
        Threads.Count,
        Math.Max(Steps.Count == 0 ? 0 : Steps.Max(s => s.Thread) + 1, Events.Count == 0 ? 0 : Events.Max(e => e.Thread) + 1));

    /// <summary>The one-line replay string of this schedule.</summary>
    public string ReplayString => Systematic.ReplayString.Encode(Steps, MaxSteps, HangIsBug);

    /// <summary>Serialises the trace.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, s_json);

    /// <summary>Parses a trace written by <see cref="ToJson"/>.</summary>
    public static ScheduleTrace FromJson(string json)
    {
        var trace = JsonSerializer.Deserialize<ScheduleTrace>(json, s_json)
            ?? throw new FormatException("The trace file is empty.");
        if (trace.Format != CurrentFormat)
        {
            throw new FormatException($"Unsupported trace format '{trace.Format}'; expected '{CurrentFormat}'.");
        }

        // What a replay relies on: a file edited or cut short fails here, not halfway through the replay.
        if (trace.MaxSteps <= 0)
        {
            throw new FormatException($"The trace's MaxSteps must be positive (got {trace.MaxSteps}).");
        }

        if (trace.Steps is null || trace.Threads is null || trace.Settings is null)
        {
            throw new FormatException("The trace lacks its Steps, Threads or Settings.");
        }

        for (var i = 0; i < trace.Steps.Count; i++)
        {
            var step = trace.Steps[i];
            if (!Enum.IsDefined(step.Kind) || !Enum.IsDefined(step.Operation) || step.Thread < -1 || step.File is null)
            {
                throw new FormatException($"The trace's step {i} is not a decision this program records.");
            }
        }

        if (trace.BugKind is { } kind && !Enum.IsDefined(kind))
        {
            throw new FormatException($"The trace's BugKind {(int)kind} is unknown.");
        }

        return trace;
    }

    /// <summary>Writes the trace to <paramref name="path"/>, creating its directory.</summary>
    public void Save(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllText(path, ToJson());
    }

    /// <summary>Reads a trace file.</summary>
    public static ScheduleTrace Load(string path) => FromJson(File.ReadAllText(path));

    /// <summary>The interleaving as a per-thread column table (see <see cref="InterleavingTable"/>).</summary>
    public string ToTable(int maxRows = InterleavingTable.DefaultMaxRows) => InterleavingTable.Render(this, maxRows);

    /// <summary>The schedule as a race description: <see cref="StoryView.Render"/>.</summary>
    public string ToStory(StoryOptions? options = null) => StoryView.Render(this, options);

    /// <summary>The schedule in Chrome trace-event JSON (<see cref="ChromeTrace"/>), for Perfetto UI and chrome://tracing.</summary>
    public string ToChromeTrace() => ChromeTrace.ToJson(this);
}
