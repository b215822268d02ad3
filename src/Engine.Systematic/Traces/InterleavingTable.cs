using System.Text;

namespace Engine.Systematic;

/// <summary>
/// Renders a schedule Lincheck-style: one column per thread, one row per decision, each cell naming the operation
/// the thread performed and the source line that performed it. Consecutive steps of one thread stay in its column,
/// so a reader sees at a glance where control passed; a switch away from a thread that could have gone on (a
/// preemption) is marked with <c>*</c>. Long schedules show their last rows, where bugs usually are.
/// </summary>
public static class InterleavingTable
{
    /// <summary>The default number of rows shown.</summary>
    public const int DefaultMaxRows = 80;

    private const int MaxCellWidth = 40;

    /// <summary>Renders <paramref name="trace"/>.</summary>
    public static string Render(ScheduleTrace trace, int maxRows = DefaultMaxRows)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var threadCount = Math.Max(trace.Threads.Count, trace.Steps.Count == 0 ? 0 : trace.Steps.Max(s => Math.Max(s.Thread, s.From)) + 1);
        var names = Enumerable.Range(0, threadCount)
            .Select(i => i < trace.Threads.Count ? $"T{i} {trace.Threads[i]}" : $"T{i}")
            .ToArray();

        var first = Math.Max(0, trace.Steps.Count - maxRows);
        var rows = new List<(int Index, int Column, string Text)>();
        for (var i = first; i < trace.Steps.Count; i++)
        {
            var step = trace.Steps[i];
            var text = step.Kind switch
            {
                DecisionKind.Schedule => $"{(step.Preemption ? "* " : "")}{step.Operation} {step.Location}",
                DecisionKind.Boolean => $"RandomBoolean -> {(step.Value != 0 ? "true" : "false")} {step.Location}",
                _ => $"RandomInteger({step.Bound}) -> {step.Value} {step.Location}",
            };
            rows.Add((step.Index, Math.Max(step.Thread, 0), Truncate(text)));
        }

        var widths = new int[threadCount];
        for (var c = 0; c < threadCount; c++)
        {
            widths[c] = Math.Min(MaxCellWidth, Math.Max(names[c].Length, rows.Where(r => r.Column == c).Select(r => r.Text.Length).DefaultIfEmpty(0).Max()));
        }

        var stepWidth = Math.Max(4, trace.Steps.Count.ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        var sb = new StringBuilder();
        if (first > 0)
        {
            sb.Append("... ").Append(first).AppendLine(" earlier steps not shown");
        }

        AppendRow(sb, "step".PadLeft(stepWidth), names, widths);
        AppendRow(sb, new string('-', stepWidth), widths.Select(w => new string('-', w)).ToArray(), widths);
        foreach (var (index, column, text) in rows)
        {
            var cells = new string[threadCount];
            Array.Fill(cells, "");
            cells[column] = text;
            AppendRow(sb, index.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(stepWidth), cells, widths);
        }

        if (trace.BugKind is { } kind)
        {
            sb.Append("=> ").Append(kind).Append(": ").AppendLine(trace.BugMessage);
        }

        if (trace.Steps.Any(s => s.Preemption))
        {
            sb.AppendLine("(* = preemption: the previous thread could have gone on)");
        }

        return sb.ToString();
    }

    private static void AppendRow(StringBuilder sb, string head, string[] cells, int[] widths)
    {
        sb.Append(head);
        for (var c = 0; c < cells.Length; c++)
        {
            sb.Append(" | ").Append(cells[c].PadRight(widths[c]));
        }

        sb.Append('\n');
    }

    private static string Truncate(string text) => text.Length <= MaxCellWidth ? text : string.Concat(text.AsSpan(0, MaxCellWidth - 1), "~");
}
