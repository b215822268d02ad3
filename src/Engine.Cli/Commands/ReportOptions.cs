using System.CommandLine;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// How a failing schedule is reported, shared by <c>test</c>, <c>replay</c> and <c>zoo --report</c>: the story view of
/// its protocol events (with <c>--steps</c>, the low-level steps under them) and, with <c>--chrome-trace FILE</c>, the
/// schedule in Chrome trace-event JSON for Perfetto UI and chrome://tracing.
/// </summary>
internal sealed class ReportOptions
{
    /// <summary><c>--steps</c>.</summary>
    public Option<bool> Steps { get; } = new("--steps")
    {
        Description = "Show every low-level step (operation and source line) under the protocol events of a failing schedule.",
    };

    /// <summary><c>--chrome-trace FILE</c>.</summary>
    public Option<string?> ChromeTrace { get; } = new("--chrome-trace")
    {
        Description = "Write the failing schedule to FILE as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open (checked before the run).",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Steps);
        command.Options.Add(ChromeTrace);
    }

    /// <summary>Whether the command line gave either option (for commands where they apply only with another).</summary>
    public bool Given(ParseResult result) => result.GetValue(Steps) || result.GetValue(ChromeTrace) is not null;

    /// <summary>Reads the options, creating the Chrome trace file now so that a path that cannot be written is refused before the run.</summary>
    public ReportOutput Open(ParseResult result)
    {
        var path = result.GetValue(ChromeTrace);
        return new ReportOutput(new StoryOptions { ShowSteps = result.GetValue(Steps) }, path, path is null ? null : Inputs.CreateOutputFile(path, "--chrome-trace"));
    }
}

/// <summary>Where a command's failing schedule goes: the story's options, and the Chrome trace file if one was asked for.</summary>
internal sealed class ReportOutput(StoryOptions story, string? chromePath, FileStream? chrome) : IDisposable
{
    private bool _written;

    /// <summary>How the story is rendered.</summary>
    public StoryOptions Story => story;

    /// <summary>The report of <paramref name="bug"/> as the options ask for it.</summary>
    public string Format(BugReport bug) => bug.Format(story);

    /// <summary>Writes <paramref name="bug"/>'s schedule to the Chrome trace file, if one was asked for and none was written yet.</summary>
    public void WriteChromeTrace(BugReport bug)
    {
        if (chrome is null || _written)
        {
            return;
        }

        ChromeTrace.Write(bug.Trace, chrome);
        chrome.Flush();
        _written = true;
        Console.WriteLine($"chrome trace: {chromePath} (open it in ui.perfetto.dev or chrome://tracing)");
    }

    /// <summary>When several tests failed: says that the Chrome trace holds the first one's schedule.</summary>
    public void NoteFirstOnly()
    {
        if (chrome is not null)
        {
            Console.WriteLine($"chrome trace: {chromePath} holds the first failing test's schedule (run one test with --method for another's)");
        }
    }

    /// <summary>At the end of a run that found no failing schedule: says that the Chrome trace asked for was not written.</summary>
    public void NoteIfNothingWritten()
    {
        if (chrome is not null && !_written)
        {
            Console.WriteLine($"chrome trace: no failing schedule, nothing written to {chromePath}");
        }
    }

    /// <summary>Closes the file, and removes it when no failing schedule was written into it (the run failed or found nothing).</summary>
    public void Dispose()
    {
        if (chrome is null)
        {
            return;
        }

        chrome.Dispose();
        if (!_written)
        {
            File.Delete(chromePath!);
        }
    }
}
