using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Engine.Systematic;

/// <summary>
/// Renders a schedule as a race description, the way kernel commit messages tell one: a column per thread, one row
/// per protocol event in schedule order (<see cref="TraceEvent"/>: the kernel function and what it saw or changed),
/// numbered, with every thread switch visible. Steps that marked no event are folded: a run of a thread's steps
/// without an event is one row saying how many steps it took, and the low-level steps under an event are shown only
/// with <see cref="StoryOptions.ShowSteps"/>. A long story is cut around the events on the objects the failure names
/// (the pfns and addresses in its message, or <see cref="StoryOptions.Pfns"/> and <see cref="StoryOptions.Addresses"/>),
/// and its end; the rows left out are counted.
/// </summary>
public static partial class StoryView
{
    /// <summary>The default number of rows shown.</summary>
    public const int DefaultMaxRows = 60;

    /// <summary>Where x86-64's user half ends: a larger number in a message (a poison word, a kernel address) is no user address.</summary>
    private const ulong UserAddressEnd = 1UL << 47;

    private const int MaxColumnWidth = 46;

    /// <summary>Rows always kept at the end of a cut story, where the failure surfaces.</summary>
    private const int Tail = 8;

    /// <summary>Renders <paramref name="trace"/> with <paramref name="options"/> (defaults when null).</summary>
    public static string Render(ScheduleTrace trace, StoryOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        options ??= new StoryOptions();
        var threadCount = trace.ThreadCount;
        var names = Enumerable.Range(0, threadCount).Select(i => i < trace.Threads.Count ? $"T{i} {trace.Threads[i]}" : $"T{i}").ToArray();
        var (pfns, addresses) = Subjects(trace, options);
        var rows = BuildRows(trace, options.ShowSteps, pfns, addresses);
        var keep = Select(rows, Math.Max(Tail + 1, options.MaxRows));

        var widths = new int[threadCount];
        for (var c = 0; c < threadCount; c++)
        {
            var widest = rows.Where((r, i) => keep[i] && r.Column == c).Select(r => Marked(r).Length).DefaultIfEmpty(0).Max();
            widths[c] = Math.Clamp(Math.Max(widest, names[c].Length), 8, MaxColumnWidth);
        }

        var labelWidth = Math.Max(3, rows.Where((r, i) => keep[i]).Select(r => r.Label.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        AppendLine(sb, "".PadLeft(labelWidth), names, widths);
        AppendLine(sb, new string('-', labelWidth), widths.Select(w => new string('-', w)).ToArray(), widths);
        var hiddenEvents = 0;
        var hiddenRows = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            if (!keep[i])
            {
                hiddenRows++;
                hiddenEvents += rows[i].IsEvent ? 1 : 0;
                continue;
            }

            if (hiddenRows > 0)
            {
                sb.Append("".PadLeft(labelWidth)).Append(" ... ").Append(Count(hiddenEvents, "event")).Append(" (").Append(Count(hiddenRows, "row")).AppendLine(") not shown");
                hiddenRows = 0;
                hiddenEvents = 0;
            }

            AppendRow(sb, rows[i], labelWidth, widths);
        }

        if (hiddenRows > 0)
        {
            sb.Append("".PadLeft(labelWidth)).Append(" ... ").Append(Count(hiddenEvents, "event")).Append(" (").Append(Count(hiddenRows, "row")).AppendLine(") not shown");
        }

        if (trace.BugKind is { } kind)
        {
            sb.Append("=> ").Append(kind).Append(": ").AppendLine(trace.BugMessage);
        }

        if (trace.Events.Count == 0)
        {
            sb.AppendLine("(the code under test marked no protocol events: the rows are its scheduling steps)");
        }

        var legend = new List<string>();
        if (rows.Any(r => r.Preemption))
        {
            legend.Add("* = preemption: the previous thread could have gone on");
        }

        if (rows.Any(r => r.Relevant) && rows.Count(r => r.IsEvent) > 0)
        {
            legend.Add("> = an event on " + DescribeSubjects(pfns, addresses));
        }

        if (legend.Count > 0)
        {
            sb.Append('(').Append(string.Join("; ", legend)).AppendLine(")");
        }

        return sb.ToString();
    }

    /// <summary>
    /// The objects a failure names: <see cref="StoryOptions.Pfns"/> and <see cref="StoryOptions.Addresses"/> when
    /// given, otherwise every <c>pfn 0x…</c> and every user address (<c>0x…</c> of nine or more hex digits, below
    /// 2^47) in the failure message, with the frames the schedule's events show mapped at those addresses.
    /// </summary>
    public static (IReadOnlyList<long> Pfns, IReadOnlyList<ulong> Addresses) Subjects(ScheduleTrace trace, StoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Pfns.Count > 0 || options.Addresses.Count > 0)
        {
            return (options.Pfns, options.Addresses);
        }

        var message = trace.BugMessage ?? "";
        var pfns = PfnPattern().Matches(message).Select(m => long.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).Distinct().ToList();
        var addresses = AddressPattern().Matches(message)
            .Where(m => !(m.Index >= 4 && message.AsSpan(m.Index - 4, 4).SequenceEqual("pfn ")))
            .Select(m => ulong.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture))
            .Where(a => a < UserAddressEnd)
            .Distinct()
            .ToList();

        // The frames the named addresses were mapped to in this schedule are the failure's objects too: the page a
        // fault allocated there, the one a zap freed, the copy a COW made.
        foreach (var e in trace.Events)
        {
            if (e.Pfn >= 0 && e.Address != 0 && !pfns.Contains(e.Pfn) && addresses.Any(a => e.Event.Concerns(-1, a)))
            {
                pfns.Add(e.Pfn);
            }
        }

        return (pfns, addresses);
    }

    private static List<Row> BuildRows(ScheduleTrace trace, bool showSteps, IReadOnlyList<long> pfns, IReadOnlyList<ulong> addresses)
    {
        var rows = new List<Row>();
        var events = trace.Events;
        var next = 0;
        var number = 0;

        void EmitEventsThrough(int step)
        {
            while (next < events.Count && events[next].Step <= step)
            {
                var e = events[next++];
                var relevant = pfns.Any(p => e.Event.Concerns(p, 0)) || addresses.Any(a => e.Event.Concerns(-1, a));
                rows.Add(new Row((++number).ToString(CultureInfo.InvariantCulture), e.Thread, $"{e.Function}: {e.Describe()}", IsEvent: true, relevant, Preemption: false)
                {
                    Key = e.Function + "\n" + e.What,
                    Last = e.Describe(),
                });
            }
        }

        EmitEventsThrough(-1);
        var steps = trace.Steps;
        for (var i = 0; i < steps.Count;)
        {
            // A run: consecutive steps of one thread.
            var thread = steps[i].Thread;
            var runEnd = i;
            while (runEnd + 1 < steps.Count && steps[runEnd + 1].Thread == thread)
            {
                runEnd++;
            }

            var preemption = steps[i].Preemption;
            var before = rows.Count;
            if (showSteps)
            {
                for (var s = i; s <= runEnd;)
                {
                    // Fold a thread repeating one operation at one line (a spin) into one row.
                    var last = s;
                    while (last + 1 <= runEnd && steps[last + 1].Operation == steps[s].Operation && steps[last + 1].File == steps[s].File
                           && steps[last + 1].Line == steps[s].Line && steps[last + 1].Kind == steps[s].Kind && events.Skip(next).TakeWhile(e => e.Step <= last).All(e => e.Thread != thread))
                    {
                        last++;
                    }

                    var label = last > s ? $"s{steps[s].Index}-{steps[last].Index}" : $"s{steps[s].Index}";
                    rows.Add(new Row(label, Math.Max(thread, 0), "  . " + StepText(steps[s], last - s + 1), IsEvent: false, Relevant: false, Preemption: false));
                    EmitEventsThrough(steps[last].Index);
                    s = last + 1;
                }
            }
            else
            {
                EmitEventsThrough(steps[runEnd].Index);
                if (rows.Count == before && thread >= 0)
                {
                    var count = runEnd - i + 1;
                    rows.Add(new Row("", thread, count == 1 ? $"  ({StepText(steps[i], 1)})" : $"  ({count} steps, {StepText(steps[i], 1)} ...)", IsEvent: false, Relevant: false, Preemption: false));
                }
            }

            if (preemption && rows.Count > before)
            {
                rows[before] = rows[before] with { Preemption = true };
            }

            i = runEnd + 1;
        }

        EmitEventsThrough(int.MaxValue);
        return showSteps ? rows : FoldRepeats(rows);
    }

    /// <summary>
    /// Folds a thread's consecutive events of one kind (one function, one format: a zap clearing eight entries, a
    /// batch freed) into one row that shows the first, how many, and the last.
    /// </summary>
    private static List<Row> FoldRepeats(List<Row> rows)
    {
        var folded = new List<Row>();
        for (var i = 0; i < rows.Count;)
        {
            var end = i;
            while (end + 1 < rows.Count && rows[i].IsEvent && rows[end + 1].IsEvent && rows[end + 1].Key == rows[i].Key
                   && rows[end + 1].Column == rows[i].Column && !rows[end + 1].Preemption)
            {
                end++;
            }

            if (end == i)
            {
                folded.Add(rows[i]);
            }
            else
            {
                var relevant = false;
                for (var j = i; j <= end; j++)
                {
                    relevant |= rows[j].Relevant;
                }

                folded.Add(rows[i] with
                {
                    Label = $"{rows[i].Label}-{rows[end].Label}",
                    Text = $"{rows[i].Text} ... x{end - i + 1}, the last: {rows[end].Last}",
                    Relevant = relevant,
                });
            }

            i = end + 1;
        }

        return folded;
    }

    private static string StepText(TraceStep step, int count) => step.Kind switch
    {
        DecisionKind.Schedule => $"{step.Operation} {step.Location}{(count > 1 ? $" x{count}" : "")}",
        DecisionKind.Boolean => $"RandomBoolean -> {(step.Value != 0 ? "true" : "false")} {step.Location}",
        _ => $"RandomInteger({step.Bound}) -> {step.Value} {step.Location}",
    };

    /// <summary>
    /// Which rows to show within <paramref name="maxRows"/>: all if they fit; otherwise the last <see cref="Tail"/>,
    /// then the events on the failure's objects with a row of context on each side (latest first), then the rows
    /// around thread switches from the end back, then the latest rows left.
    /// </summary>
    private static bool[] Select(List<Row> rows, int maxRows)
    {
        var n = rows.Count;
        var keep = new bool[n];
        if (n <= maxRows)
        {
            Array.Fill(keep, true);
            return keep;
        }

        var budget = maxRows;
        bool Keep(int i)
        {
            if (i < 0 || i >= n || keep[i] || budget == 0)
            {
                return budget > 0;
            }

            keep[i] = true;
            return --budget > 0;
        }

        for (var i = n - Tail; i < n; i++)
        {
            Keep(i);
        }

        for (var i = n - 1; i >= 0 && budget > 0; i--)
        {
            if (rows[i].Relevant)
            {
                Keep(i);
                Keep(i - 1);
                Keep(i + 1);
            }
        }

        for (var i = n - 1; i >= 1 && budget > 0; i--)
        {
            if (rows[i].Column != rows[i - 1].Column)
            {
                Keep(i - 1);
                Keep(i);
            }
        }

        for (var i = n - 1; i >= 0 && budget > 0; i--)
        {
            Keep(i);
        }

        return keep;
    }

    private static void AppendRow(StringBuilder sb, Row row, int labelWidth, int[] widths)
    {
        var lines = Wrap(Marked(row), widths[row.Column]);
        for (var l = 0; l < lines.Count; l++)
        {
            var cells = new string[widths.Length];
            Array.Fill(cells, "");
            cells[row.Column] = l == 0 ? lines[l] : "  " + lines[l];
            AppendLine(sb, (l == 0 ? row.Label : "").PadLeft(labelWidth), cells, widths);
        }
    }

    /// <summary>A row's text behind its markers: <c>*</c> for a preemption, <c>&gt;</c> for an event on the failure's objects.</summary>
    private static string Marked(Row row)
    {
        var marker = (row.Preemption ? "*" : "") + (row.Relevant ? ">" : "");
        return marker.Length > 0 ? $"{marker} {row.Text}" : row.Text;
    }

    /// <summary>Breaks <paramref name="text"/> at spaces into lines of at most <paramref name="width"/>, the later ones 2 narrower (they are indented).</summary>
    private static List<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        var rest = text;
        var room = width;
        while (rest.Length > room)
        {
            var cut = rest.LastIndexOf(' ', room, room + 1);
            if (cut <= room / 3)
            {
                cut = room;
            }

            lines.Add(rest[..cut].TrimEnd());
            rest = rest[cut..].TrimStart();
            room = width - 2;
        }

        lines.Add(rest);
        return lines;
    }

    private static void AppendLine(StringBuilder sb, string head, string[] cells, int[] widths)
    {
        sb.Append(head);
        for (var c = 0; c < cells.Length; c++)
        {
            sb.Append(" | ").Append(cells[c].PadRight(widths[c]));
        }

        sb.Append('\n');
    }

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private static string DescribeSubjects(IReadOnlyList<long> pfns, IReadOnlyList<ulong> addresses)
        => string.Join(", ", pfns.Select(p => $"pfn 0x{p:x}").Concat(addresses.Select(a => $"0x{a:x}")));

    [GeneratedRegex(@"pfn 0x([0-9a-fA-F]+)")]
    private static partial Regex PfnPattern();

    [GeneratedRegex(@"0x([0-9a-fA-F]{9,16})\b")]
    private static partial Regex AddressPattern();

    private readonly record struct Row(string Label, int Column, string Text, bool IsEvent, bool Relevant, bool Preemption)
    {
        /// <summary>An event's function and format: rows with equal keys are events of one kind.</summary>
        public string? Key { get; init; }

        /// <summary>An event's description without its function (the last of a folded run).</summary>
        public string Last { get; init; } = "";
    }
}

/// <summary>How <see cref="StoryView"/> renders a schedule.</summary>
public sealed class StoryOptions
{
    /// <summary>Show every low-level step (operation and source line) under the events, not only the events. Default off.</summary>
    public bool ShowSteps { get; init; }

    /// <summary>The most rows shown; a longer story is cut around the events that matter. Default <see cref="StoryView.DefaultMaxRows"/>.</summary>
    public int MaxRows { get; init; } = StoryView.DefaultMaxRows;

    /// <summary>The frames the failure concerns; when empty (and <see cref="Addresses"/> too), taken from the failure message.</summary>
    public IReadOnlyList<long> Pfns { get; init; } = [];

    /// <summary>The addresses the failure concerns (compared by page); see <see cref="Pfns"/>.</summary>
    public IReadOnlyList<ulong> Addresses { get; init; } = [];
}
