using System.Globalization;
using System.Text;

namespace Engine.Systematic;

/// <summary>
/// Renders a schedule Lincheck-style: one column per thread, one row per decision, each cell naming the operation
/// the thread performed and the source line that performed it. Consecutive steps of one thread stay in its column,
/// so a reader sees at a glance where control passed; a switch away from a thread that could have gone on (a
/// preemption) is marked with <c>*</c>. A run of one thread repeating one operation at one source line (a spin, a
/// loop) is folded into one row labelled with its first and last step and marked <c>xN</c>. Long schedules show their
/// last rows, where bugs surface, and the rows around earlier thread switches, where races start; the rows left out
/// are counted.
/// </summary>
public static class InterleavingTable
{
    /// <summary>The default number of rows shown.</summary>
    public const int DefaultMaxRows = 80;

    private const int MaxCellWidth = 40;

    /// <summary>Rows shown on each side of a thread switch when a long schedule is cut.</summary>
    private const int SwitchContext = 3;

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

        var keep = SelectRows(rows.Select(r => r.Column).ToList(), maxRows);
        var widths = new int[threadCount];
        for (var c = 0; c < threadCount; c++)
        {
            widths[c] = Math.Min(MaxCellWidth, Math.Max(names[c].Length, rows.Where((r, i) => keep[i] && r.Column == c).Select(r => r.Text.Length).DefaultIfEmpty(0).Max()));
        }

        var shown = Enumerable.Range(0, rows.Count).Where(i => keep[i]).ToList();
        var stepWidth = Math.Max(4, shown.Select(i => rows[i].Label.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        var headerWritten = false;
        var previous = -1;
        foreach (var i in shown)
        {
            if (i > previous + 1)
            {
                // Rows previous+1 .. i-1 are hidden: say how many steps they hold.
                var hidden = IndexOfRow(trace, rows[i].Label) - (previous < 0 ? 0 : IndexOfRow(trace, rows[previous + 1].Label));
                sb.Append("... ").Append(hidden).AppendLine(previous < 0 ? " earlier steps not shown" : " steps not shown");
            }

            if (!headerWritten)
            {
                AppendRow(sb, "step".PadLeft(stepWidth), names, widths);
                AppendRow(sb, new string('-', stepWidth), widths.Select(w => new string('-', w)).ToArray(), widths);
                headerWritten = true;
            }

            var (label, column, text) = rows[i];
            var cells = new string[threadCount];
            Array.Fill(cells, "");
            cells[column] = text;
            AppendRow(sb, label.PadLeft(stepWidth), cells, widths);
            previous = i;
        }

        if (!headerWritten)
        {
            AppendRow(sb, "step".PadLeft(stepWidth), names, widths);
            AppendRow(sb, new string('-', stepWidth), widths.Select(w => new string('-', w)).ToArray(), widths);
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

    /// <summary>
    /// Which of the rows (given by the column each is in) to show within <paramref name="maxRows"/>: all of them if they
    /// fit; otherwise the last half of the budget, then the rows around each switch of thread from the last switch
    /// back (where one thread overtook another: the story of a race is told at its switches, which in a long
    /// schedule can lie far before its end), and what budget is left on the latest rows not yet shown.
    /// </summary>
    private static bool[] SelectRows(List<int> columns, int maxRows)
    {
        var n = columns.Count;
        var keep = new bool[n];
        if (n <= maxRows)
        {
            Array.Fill(keep, true);
            return keep;
        }

        var budget = maxRows;
        var tail = Math.Max(1, maxRows / 2);
        for (var i = n - tail; i < n; i++)
        {
            keep[i] = true;
            budget--;
        }

        for (var r = n - tail; r >= 1 && budget > 0; r--)
        {
            if (columns[r] == columns[r - 1])
            {
                continue;
            }

            // The switch's rows first, then outwards: r-1 | r, r-2, r+1, r-3, r+2 ...
            for (var d = 0; d < SwitchContext * 2 && budget > 0; d++)
            {
                var j = d % 2 == 0 ? r - 1 - (d / 2) : r + (d / 2);
                if (j >= 0 && j < n && !keep[j])
                {
                    keep[j] = true;
                    budget--;
                }
            }
        }

        for (var i = n - 1; i >= 0 && budget > 0; i--)
        {
            if (!keep[i])
            {
                keep[i] = true;
                budget--;
            }
        }

        return keep;
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
