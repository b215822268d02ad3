using System.Globalization;
using System.Text;

namespace Engine.Systematic;

/// <summary>
/// Renders a schedule Lincheck-style: one column per thread, one row per decision, each cell naming the operation
/// the thread performed and the source line that performed it. Consecutive steps of one thread stay in its column,
/// so a reader sees at a glance where control passed; a switch away from a thread that could have gone on (a
/// preemption) is marked with <c>*</c>. A run of one thread repeating one operation at one source line (a spin, a
/// loop) is folded into one row labelled with its first and last step and marked <c>xN</c>. Long schedules show their
/// last rows, where bugs usually are.
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

        // Fold runs of one thread repeating one operation at one line without a preemption (a spin, a loop over a
        // TLB) into one row, so the rows shown reach back to where the story starts; then keep the last maxRows.
        var rows = new List<(string Label, int Column, string Text)>();
        var runStart = 0;
        for (var i = 0; i < trace.Steps.Count; i++)
        {
            var step = trace.Steps[i];
            var next = i + 1 < trace.Steps.Count ? trace.Steps[i + 1] : default;
            if (i + 1 < trace.Steps.Count && step.Kind == DecisionKind.Schedule && next.Kind == DecisionKind.Schedule && !next.Preemption
                && next.Thread == step.Thread && next.Operation == step.Operation && next.File == step.File && next.Line == step.Line)
            {
                continue;
            }

            var head = trace.Steps[runStart];
            var count = i - runStart + 1;
            var text = head.Kind switch
            {
                DecisionKind.Schedule => $"{(head.Preemption ? "* " : "")}{head.Operation} {head.Location}{(count > 1 ? $" x{count}" : "")}",
                DecisionKind.Boolean => $"RandomBoolean -> {(head.Value != 0 ? "true" : "false")} {head.Location}",
                _ => $"RandomInteger({head.Bound}) -> {head.Value} {head.Location}",
            };
            var label = count > 1 ? string.Create(CultureInfo.InvariantCulture, $"{head.Index}-{step.Index}") : head.Index.ToString(CultureInfo.InvariantCulture);
            rows.Add((label, Math.Max(head.Thread, 0), Truncate(text)));
            runStart = i + 1;
        }

        var hiddenRows = Math.Max(0, rows.Count - maxRows);
        var first = hiddenRows == 0 ? 0 : IndexOfRow(trace, rows[hiddenRows].Label);
        rows.RemoveRange(0, hiddenRows);

        var widths = new int[threadCount];
        for (var c = 0; c < threadCount; c++)
        {
            widths[c] = Math.Min(MaxCellWidth, Math.Max(names[c].Length, rows.Where(r => r.Column == c).Select(r => r.Text.Length).DefaultIfEmpty(0).Max()));
        }

        var stepWidth = Math.Max(4, rows.Select(r => r.Label.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        if (first > 0)
        {
            sb.Append("... ").Append(first).AppendLine(" earlier steps not shown");
        }

        AppendRow(sb, "step".PadLeft(stepWidth), names, widths);
        AppendRow(sb, new string('-', stepWidth), widths.Select(w => new string('-', w)).ToArray(), widths);
        foreach (var (label, column, text) in rows)
        {
            var cells = new string[threadCount];
            Array.Fill(cells, "");
            cells[column] = text;
            AppendRow(sb, label.PadLeft(stepWidth), cells, widths);
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

    /// <summary>The position in the trace of the first step of a row labelled <paramref name="label"/>.</summary>
    private static int IndexOfRow(ScheduleTrace trace, string label)
    {
        var index = int.Parse(label.Split('-')[0], CultureInfo.InvariantCulture);
        for (var i = 0; i < trace.Steps.Count; i++)
        {
            if (trace.Steps[i].Index == index)
            {
                return i;
            }
        }

        return 0;
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
