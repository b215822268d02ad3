using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Engine.Systematic;

/// <summary>
/// Writes a schedule in the Chrome trace-event JSON format, which Perfetto UI (ui.perfetto.dev) and
/// chrome://tracing open: one process, one track (thread) per logical thread, named as the test named it. Time is
/// logical: decision <c>n</c> of the schedule starts at <c>n</c> µs. Each scheduling step is a slice of 1 µs on the
/// track of the thread it ran (named by its operation and source line, category <c>step</c>); the protocol events the
/// thread marked while it ran are slices nested inside it (named by the kernel function, category <c>event</c>, with
/// what it saw or changed, the pfn, the address and the values as arguments). The failure is an instant event on the
/// track of the thread that failed, at the end.
/// </summary>
public static class ChromeTrace
{
    /// <summary>The trace as JSON text.</summary>
    public static string ToJson(ScheduleTrace trace)
    {
        ArgumentNullException.ThrowIfNull(trace);
        using var stream = new MemoryStream();
        Write(trace, stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Writes the trace to <paramref name="path"/>, creating its directory.</summary>
    public static void Save(ScheduleTrace trace, string path)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        using var stream = File.Create(path);
        Write(trace, stream);
    }

    /// <summary>Writes the trace to <paramref name="stream"/>.</summary>
    public static void Write(ScheduleTrace trace, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(stream);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        json.WriteStartObject();
        json.WriteString("displayTimeUnit", "ns");
        json.WriteStartObject("otherData");
        json.WriteString("test", trace.Test ?? "");
        json.WriteString("scheduler", trace.Scheduler ?? "engine");
        json.WriteString("strategy", trace.Strategy);
        json.WriteString("replay", trace.ReplayString);
        json.WriteString("time", "logical: decision n of the schedule starts at n us");
        json.WriteEndObject();
        json.WriteStartArray("traceEvents");

        Metadata(json, "process_name", -1, trace.Test ?? "engine schedule");
        var threadCount = trace.ThreadCount;
        for (var t = 0; t < threadCount; t++)
        {
            Metadata(json, "thread_name", t, t < trace.Threads.Count ? $"T{t} {trace.Threads[t]}" : $"T{t}");
            json.WriteStartObject();
            json.WriteString("name", "thread_sort_index");
            json.WriteString("ph", "M");
            json.WriteNumber("pid", 1);
            json.WriteNumber("tid", t);
            json.WriteStartObject("args");
            json.WriteNumber("sort_index", t);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        // Events before the first decision sit in [0, 1) on their thread; events after decision n in [n, n + 1),
        // divided among the events of that step so that their slices nest in the step's and do not overlap.
        var byStep = trace.Events.GroupBy(e => e.Step).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var step in trace.Steps)
        {
            if (step.Thread < 0)
            {
                continue;
            }

            json.WriteStartObject();
            json.WriteString("name", StepName(step));
            json.WriteString("cat", "step");
            json.WriteString("ph", "X");
            json.WriteNumber("ts", step.Index);
            json.WriteNumber("dur", 1);
            json.WriteNumber("pid", 1);
            json.WriteNumber("tid", step.Thread);
            json.WriteStartObject("args");
            json.WriteNumber("step", step.Index);
            json.WriteString("operation", step.Operation.ToString());
            json.WriteString("at", step.Location);
            if (step.Preemption)
            {
                json.WriteBoolean("preemption", true);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        foreach (var (stepIndex, events) in byStep)
        {
            var start = Math.Max(stepIndex, 0);
            var slot = 1.0 / (events.Count + 1);
            for (var k = 0; k < events.Count; k++)
            {
                var e = events[k];
                json.WriteStartObject();
                json.WriteString("name", e.Function);
                json.WriteString("cat", "event");
                json.WriteString("ph", "X");
                json.WriteNumber("ts", start + ((k + 0.5) * slot));
                json.WriteNumber("dur", slot * 0.9);
                json.WriteNumber("pid", 1);
                json.WriteNumber("tid", e.Thread);
                json.WriteStartObject("args");
                json.WriteString("what", e.Describe());
                if (e.Pfn >= 0)
                {
                    json.WriteString("pfn", $"0x{e.Pfn:x}");
                }

                if (e.Address != 0)
                {
                    json.WriteString("address", $"0x{e.Address:x}");
                }

                json.WriteNumber("value", e.Value);
                json.WriteNumber("value2", e.Value2);
                json.WriteNumber("after_step", e.Step);
                json.WriteEndObject();
                json.WriteEndObject();
            }
        }

        if (trace.BugKind is { } kind)
        {
            var last = trace.Steps.Count > 0 ? trace.Steps[^1] : default;
            json.WriteStartObject();
            json.WriteString("name", kind.ToString());
            json.WriteString("cat", "bug");
            json.WriteString("ph", "i");
            json.WriteString("s", "g");
            json.WriteNumber("ts", trace.Steps.Count);
            json.WriteNumber("pid", 1);
            json.WriteNumber("tid", Math.Max(last.Thread, 0));
            json.WriteStartObject("args");
            json.WriteString("message", trace.BugMessage ?? "");
            json.WriteEndObject();
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void Metadata(Utf8JsonWriter json, string name, int thread, string value)
    {
        json.WriteStartObject();
        json.WriteString("name", name);
        json.WriteString("ph", "M");
        json.WriteNumber("pid", 1);
        if (thread >= 0)
        {
            json.WriteNumber("tid", thread);
        }

        json.WriteStartObject("args");
        json.WriteString("name", value);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static string StepName(TraceStep step) => step.Kind switch
    {
        DecisionKind.Schedule => string.Create(CultureInfo.InvariantCulture, $"{step.Operation} {step.Location}"),
        DecisionKind.Boolean => $"RandomBoolean {step.Location}",
        _ => $"RandomInteger {step.Location}",
    };
}
