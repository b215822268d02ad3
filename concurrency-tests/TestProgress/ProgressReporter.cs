using System.Diagnostics;
using System.Globalization;

namespace Engine.TestProgress;

/// <summary>
/// Counts finished test cases and, on a dedicated background thread (not the thread pool, which a test may starve),
/// writes one line every <see cref="Interval"/> until stopped: "progress: 120 of 260 test cases done, 0 failed,
/// 1 min 40 s elapsed; running X (35 s)". The thread uses no Engine.Sync primitive, so neither scheduler sees it as
/// a thread it does not control.
/// </summary>
public sealed class ProgressReporter
{
    /// <summary>Well under the 30 s a silent console may last (issue 13), with room for a loaded 2-core machine.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(20);

    private readonly int _total;
    private readonly Action<string> _write;
    private readonly Stopwatch _sinceStart = new();
    private readonly object _gate = new();
    private int _done;
    private int _failed;
    private string? _running;
    private long _runningSince;
    private bool _stopped;
    private Thread? _thread;

    public ProgressReporter(int total, Action<string> write, TimeSpan? interval = null)
    {
        _total = total;
        _write = write;
        Interval = interval ?? DefaultInterval;
    }

    public TimeSpan Interval { get; }

    /// <summary>
    /// Writes the first line, which says how many test cases will run, and starts the clock and the reporting thread
    /// (once). The first line makes the first silence one interval long, however long the test host took to start
    /// and discover the tests.
    /// </summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_thread is not null || _stopped)
            {
                return;
            }

            _write(string.Create(CultureInfo.InvariantCulture,
                $"progress: {_total} test cases to run, a line every {Interval.TotalSeconds:0.###} s"));
            _sinceStart.Start();
            _thread = new Thread(Loop) { IsBackground = true, Name = "test progress" };
            _thread.Start();
        }
    }

    public void TestCaseStarted(string displayName)
    {
        lock (_gate)
        {
            _running = displayName;
            _runningSince = _sinceStart.ElapsedMilliseconds;
        }
    }

    public void TestFailed()
    {
        lock (_gate)
        {
            _failed++;
        }
    }

    public void TestCaseFinished()
    {
        lock (_gate)
        {
            _done++;
            _running = null;
        }
    }

    /// <summary>Stops the reporting thread: no line is written once this has returned.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _stopped = true;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>The line the thread writes now.</summary>
    public string Line()
    {
        lock (_gate)
        {
            var elapsedMs = _sinceStart.ElapsedMilliseconds;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"progress: {_done} of {_total} test cases done, {_failed} failed, {Format(elapsedMs)} elapsed");
            return _running is null
                ? line
                : string.Create(CultureInfo.InvariantCulture, $"{line}; running {_running} ({Format(elapsedMs - _runningSince)})");
        }
    }

    private static string Format(long milliseconds)
    {
        var seconds = milliseconds / 1000;
        return seconds < 60
            ? string.Create(CultureInfo.InvariantCulture, $"{seconds} s")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60} min {seconds % 60:00} s");
    }

    private void Loop()
    {
        lock (_gate)
        {
            while (!_stopped)
            {
                // Monitor.Wait gives the lock up while it waits; Stop wakes it at once. The line is written under the
                // lock, so that none is written once Stop has returned.
                Monitor.Wait(_gate, Interval);
                if (!_stopped)
                {
                    _write(Line());
                }
            }
        }
    }
}
