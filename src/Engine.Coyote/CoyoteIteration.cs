using Engine.Sync;
using Engine.Systematic;
using Engine.Systematic.Runtime;

namespace Engine.Coyote;

/// <summary>
/// One Coyote iteration of a test body: its threads, the schedule as the built-in scheduler would record it, the bug,
/// and the end of the iteration.
/// <para>
/// Recording. Coyote runs one operation at a time, so the thread that returns from a Coyote scheduling call is the one
/// Coyote chose. Before each call the calling thread notes itself as the decision's origin (<see cref="HandOff"/>);
/// the thread that resumes records the decision (<see cref="Resumed"/>) with the operation it had announced, exactly
/// as the built-in scheduler records a step. The recorded steps give the readable interleaving table and a replay
/// string the built-in scheduler can follow.
/// </para>
/// <para>
/// The end. When Coyote ends an iteration early (a bug, the step bound) it interrupts its own threads and throws
/// <see cref="ThreadInterruptedException"/> into the thread it was running, but it leaves threads it did not create
/// paused, and a thread that went on past that point would run uncontrolled. So the end is unwound here, one thread
/// at a time: the thread that was running unwinds first (every <c>Engine.Sync</c> operation it meets throws
/// <see cref="ExecutionCanceledException"/>); the test body, which Coyote interrupts, waits for it
/// (<see cref="Interrupted"/>) before it unwinds; then the body's driver interrupts every other thread in turn and
/// waits for each (<see cref="UnwindOthers"/>). Only then does the iteration finish, and Coyote's testing engine waits
/// for that (<see cref="AwaitFinished"/>) before it starts the next iteration.
/// </para>
/// </summary>
internal sealed class CoyoteIteration
{
    private readonly object _gate = new();
    private readonly List<CoyoteThread> _threads = [];
    private readonly List<TraceStep> _steps = [];
    private readonly List<TraceEvent> _events = [];
    private readonly TimeSpan _watchdog;
    private CoyoteThread? _running;
    private CoyoteThread? _from;
    private bool _fromEnabled;
    private int _fromStep;
    private volatile bool _ended;
    private volatile bool _finished;
    private string? _uncontrolled;

    public CoyoteIteration(int number, TimeSpan watchdog)
    {
        Number = number;
        _watchdog = watchdog;
        Main = NewThread(null, "main", "", 0);
    }

    /// <summary>The iteration's index in its run, from 0.</summary>
    public int Number { get; }

    /// <summary>Thread 0: the test body, on Coyote's own controlled thread.</summary>
    public CoyoteThread Main { get; }

    /// <summary>True once the iteration has ended: from then on every scheduling point unwinds its thread.</summary>
    public bool Ended => _ended;

    public BugKind? BugKind { get; private set; }

    public string? BugMessage { get; private set; }

    /// <summary>The kind of bug a failed assertion stated, if any (Coyote knows nothing of it).</summary>
    public string? BugCategory { get; private set; }

    public Exception? BugException { get; private set; }

    /// <summary>Coyote's own words for the bug, when Coyote detected or was told about one.</summary>
    public string? CoyoteMessage { get; private set; }

    /// <summary>True when Coyote ended the iteration without a bug: the step bound.</summary>
    public bool HitStepBound { get; private set; }

    /// <summary>OS threads created for the iteration's started threads.</summary>
    public int OsThreadsCreated { get; private set; }

    public IReadOnlyList<CoyoteThread> Threads => _threads;

    public IReadOnlyList<TraceStep> Steps => _steps;

    public int Preemptions => _steps.Count(s => s.Preemption);

    /// <summary>The protocol events the iteration's threads marked, each after the decision it follows.</summary>
    public IReadOnlyList<TraceEvent> Events => _events;

    /// <summary>Records a protocol event <paramref name="thread"/> (the running one) marked.</summary>
    public void Marked(CoyoteThread thread, in ProtocolEvent protocolEvent) => _events.Add(TraceEvent.Of(_steps.Count - 1, thread.Id, protocolEvent));

    /// <summary>Creates a thread of this iteration; its first step will be the announced start.</summary>
    public CoyoteThread NewThread(Action? body, string name, string file, int line)
    {
        var thread = new CoyoteThread(this, _threads.Count, name, body);
        thread.SetPending(OperationKind.ThreadStart, file, line);
        _threads.Add(thread);
        if (body is not null)
        {
            OsThreadsCreated++;
        }

        return thread;
    }

    /// <summary>Before a Coyote scheduling call: <paramref name="from"/> is the decision's origin, still enabled or not.</summary>
    public void HandOff(CoyoteThread from, bool enabled)
    {
        _from = from;
        _fromEnabled = enabled;
        _fromStep = from.TimesChosen;
    }

    /// <summary>After Coyote chose <paramref name="thread"/>: records the decision as the built-in scheduler records a step.</summary>
    public void Resumed(CoyoteThread thread)
    {
        _steps.Add(new TraceStep(_steps.Count, DecisionKind.Schedule, thread.Id, thread.Id, 0, thread.PendingKind, thread.PendingFile,
            thread.PendingLine, _from?.Id ?? -1, _from is null ? 0 : _fromStep, _fromEnabled && !ReferenceEquals(_from, thread)));
        thread.TimesChosen++;
        Volatile.Write(ref _running, thread);
    }

    /// <summary>Records a data choice of <paramref name="thread"/>.</summary>
    public void Chose(CoyoteThread thread, DecisionKind kind, int value, int bound, string file, int line)
        => _steps.Add(new TraceStep(_steps.Count, kind, thread.Id, value, bound, OperationKind.RandomChoice, file, line, thread.Id, thread.TimesChosen, false));

    /// <summary>Throws the unwinding exception once the iteration has ended.</summary>
    public void ThrowIfEnded()
    {
        if (_ended)
        {
            throw new ExecutionCanceledException();
        }
    }

    /// <summary>True when every thread but the test body has completed.</summary>
    public bool OthersCompleted()
    {
        for (var i = 1; i < _threads.Count; i++)
        {
            if (!_threads[i].IsCompleted)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Records the iteration's bug (the first one wins), of <paramref name="category"/> if its assertion stated one, and ends the iteration.</summary>
    public void RecordBug(BugKind kind, string message, Exception? exception, string? category = null)
    {
        lock (_gate)
        {
            if (BugKind is null)
            {
                BugKind = kind;
                BugMessage = message;
                BugCategory = category;
                BugException = exception;
            }

            _ended = true;
        }
    }

    /// <summary>
    /// Coyote's <c>OnFailure</c>: a bug Coyote detected (a deadlock, a hang) or was told about (through
    /// <see cref="ReportToCoyote"/>). Runs on the thread Coyote was running, before Coyote interrupts the others.
    /// </summary>
    public void OnCoyoteFailure(string text)
    {
        lock (_gate)
        {
            CoyoteMessage ??= text;
            if (BugKind is null)
            {
                var (kind, message) = Classify(text);
                BugKind = kind;
                BugMessage = message;
            }

            _ended = true;
        }
    }

    /// <summary>
    /// Hands the recorded bug to Coyote (so Coyote records it and its reproducible trace) and returns the exception
    /// that unwinds the calling thread. Coyote ends the iteration inside the call.
    /// </summary>
    public ExecutionCanceledException ReportToCoyote()
    {
        try
        {
            // The format argument keeps braces in the message from being read as a format string.
            Microsoft.Coyote.Specifications.Specification.Assert(false, "{0}", BugMessage ?? "bug");
        }
        catch (ThreadInterruptedException)
        {
            // Coyote ends the iteration by interrupting the thread that reported the bug.
        }

        _ended = true;
        return new ExecutionCanceledException();
    }

    /// <summary>
    /// A thread of this iteration was interrupted by Coyote: the iteration has ended. Unless it was the thread that
    /// was running, it waits until that thread has unwound, so no two threads of the iteration unwind at once.
    /// </summary>
    public ExecutionCanceledException Interrupted(CoyoteThread thread)
    {
        lock (_gate)
        {
            if (BugKind is null)
            {
                HitStepBound = true;
            }

            _ended = true;
        }

        var running = Volatile.Read(ref _running);
        if (running is not null && !ReferenceEquals(running, thread))
        {
            AwaitExit(running);
        }

        return new ExecutionCanceledException();
    }

    /// <summary>Marks <paramref name="thread"/>'s OS thread as gone and wakes whoever waits for it.</summary>
    public void Exited(CoyoteThread thread)
    {
        lock (_gate)
        {
            thread.MarkExited();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// The test body's last act in an iteration that ended early: interrupts each started thread still paused in
    /// Coyote, one at a time, and waits for it to unwind.
    /// </summary>
    public void UnwindOthers()
    {
        // The body has unwound (after the thread that was running, if another): each thread interrupted from here on
        // is the only one running, and must not wait for anybody.
        Volatile.Write(ref _running, null);
        for (var i = 1; i < _threads.Count; i++)
        {
            var thread = _threads[i];
            if (thread.HasExited || thread.OsThread is null)
            {
                continue;
            }

            thread.OsThread.Interrupt();
            AwaitExit(thread);
        }
    }

    /// <summary>An Engine.Sync operation of a thread this iteration does not control, seen while it ran.</summary>
    public void SawUncontrolled(string message)
    {
        lock (_gate)
        {
            _uncontrolled ??= message;
        }
    }

    /// <summary>Fails the iteration if an uncontrolled operation was seen (called by its controlled threads).</summary>
    public void FailIfUncontrolled()
    {
        string? message;
        lock (_gate)
        {
            message = BugKind is null ? _uncontrolled : null;
        }

        if (message is not null)
        {
            RecordBug(Systematic.BugKind.Uncontrolled, message, null);
            throw ReportToCoyote();
        }
    }

    /// <summary>The test body has finished, normally or not: the next iteration may start.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            _finished = true;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Coyote's testing engine, at the end of the iteration: waits until the body has finished unwinding.</summary>
    public void AwaitFinished()
    {
        lock (_gate)
        {
            var deadline = DateTime.UtcNow + _watchdog + _watchdog;
            while (!_finished)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left))
                {
                    RecordBug(Systematic.BugKind.Uncontrolled,
                        $"Watchdog: the test body did not finish unwinding within {2 * _watchdog.TotalSeconds:0.###} s after Coyote ended the iteration: " +
                        "a thread is blocked or spinning outside Engine.Sync.", null);
                    return;
                }
            }
        }
    }

    /// <summary>Describes every thread that was waiting, as the built-in scheduler words a deadlock.</summary>
    public string DescribeWaiting()
    {
        var waiting = _threads.Where(t => !t.IsCompleted).Select(t => $"{t.Describe()} waits in {t.DescribePending()}");
        return string.Join("; ", waiting);
    }

    private void AwaitExit(CoyoteThread thread)
    {
        lock (_gate)
        {
            var deadline = DateTime.UtcNow + _watchdog;
            while (!thread.HasExited)
            {
                var left = deadline - DateTime.UtcNow;
                bool woke;
                try
                {
                    woke = left > TimeSpan.Zero && Monitor.Wait(_gate, left);
                }
                catch (ThreadInterruptedException)
                {
                    // A late interrupt from Coyote meant for this thread's earlier wait: keep waiting.
                    continue;
                }

                if (!woke && !thread.HasExited)
                {
                    // Blocked or spinning outside Engine.Sync: abandon its OS thread (a background thread).
                    if (BugKind is null)
                    {
                        BugKind = Systematic.BugKind.Uncontrolled;
                        BugMessage = $"Watchdog: {thread.Describe()} did not unwind within {_watchdog.TotalSeconds:0.###} s after its " +
                                     $"iteration ended; it is blocked or spinning outside Engine.Sync after {thread.DescribePending()}.";
                    }

                    thread.MarkExited();
                    return;
                }
            }
        }
    }

    private (BugKind Kind, string Message) Classify(string text)
    {
        if (text.StartsWith("Deadlock detected", StringComparison.Ordinal))
        {
            return (Systematic.BugKind.Deadlock, $"Deadlock: no thread can run; {DescribeWaiting()}.");
        }

        if (text.StartsWith("Potential deadlock", StringComparison.Ordinal))
        {
            return (Systematic.BugKind.Uncontrolled,
                $"Watchdog: no scheduling decision for {_watchdog.TotalSeconds:0.###} s; a thread is blocked or spinning outside Engine.Sync. Coyote: {text}");
        }

        if (text.Contains("steps bound", StringComparison.OrdinalIgnoreCase))
        {
            return (Systematic.BugKind.Hang, $"Hang: the iteration reached the step bound without finishing. Coyote: {text}");
        }

        return (Systematic.BugKind.Assertion, text);
    }
}
