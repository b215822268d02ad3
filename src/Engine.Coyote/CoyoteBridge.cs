using System.Diagnostics.CodeAnalysis;
using Engine.Sync;
using Engine.Systematic;
using Engine.Systematic.Runtime;
using Microsoft.Coyote.Runtime;
using CoyoteSchedulingPoint = Microsoft.Coyote.Runtime.SchedulingPoint;
using Operation = Microsoft.Coyote.Runtime.Operation;

namespace Engine.Coyote;

/// <summary>
/// Connects the engine to Microsoft Coyote without rewriting any binary, through Coyote's public surface for
/// instrumenting primitives (<see cref="Microsoft.Coyote.Runtime.Operation"/> and
/// <see cref="Microsoft.Coyote.Runtime.SchedulingPoint"/>):
/// <list type="bullet">
/// <item>every <c>Engine.Sync</c> scheduling point of a controlled thread becomes <c>SchedulingPoint.Interleave()</c>
/// (<c>Yield()</c> for an explicit yield);</item>
/// <item>every wait (<c>Wait.Until</c>, a held spinlock, a rwsem, a join) becomes <c>Operation.PauseUntil</c>: a blocked
/// operation Coyote enables when the condition holds, never a loop of yields that Coyote's priority strategies would
/// pick again and again;</item>
/// <item><see cref="ControlledThread.Start"/> creates a Coyote operation (<c>Operation.CreateFrom</c>, named after the
/// thread), starts it (<c>Operation.Start</c>) on an OS thread that waits to be scheduled (<c>Operation.OnStarted</c>)
/// and completes it (<c>Operation.OnCompleted</c>, <c>Operation.ScheduleNext</c>);</item>
/// <item>a failed <see cref="Specification.Assert(bool, string)"/> and an exception a thread does not handle become Coyote
/// bugs (<c>Microsoft.Coyote.Specifications.Specification.Assert</c>), with the same message the built-in scheduler
/// gives (and the category the assertion stated, kept beside Coyote's report);</item>
/// <item><see cref="ControlledRandom"/> draws from Coyote's controlled generator.</item>
/// </list>
/// It is the scheduling hook (<see cref="ISchedulingHook"/>) and the external scheduler of the test API
/// (<see cref="IExternalScheduler"/>) at once: both find the calling thread's <see cref="CoyoteThread"/> in a
/// thread-static field.
/// </summary>
internal sealed class CoyoteBridge : ISchedulingHook, IExternalScheduler
{
    public static readonly CoyoteBridge Instance = new();

    [ThreadStatic]
    private static CoyoteThread? t_current;

    [ThreadStatic]
    private static int t_suppress;

    private static readonly object s_activeGate = new();
    private static readonly List<CoyoteIteration> s_active = [];
    private static volatile int s_activeCount;

    private CoyoteBridge()
    {
    }

    /// <inheritdoc/>
    public bool ControlsCurrentThread => t_current is not null;

    /// <summary>Makes the bridge the process's scheduling hook and external scheduler (replacing the built-in scheduler's hook).</summary>
    public static void Install()
    {
        SchedulingHook.Install(Instance);
        ExternalScheduler.Install(Instance);
    }

    // ---- ISchedulingHook ----

    /// <inheritdoc/>
    public void OnSchedulingPoint(OperationKind kind, string file, int line)
    {
        if (t_suppress > 0)
        {
            return;
        }

        var thread = t_current;
        if (thread is null)
        {
            ReportIfUncontrolled(kind, file, line);
            return;
        }

        var iteration = thread.Iteration;
        iteration.ThrowIfEnded();
        iteration.FailIfUncontrolled();
        thread.SetPending(kind, file, line);
        iteration.HandOff(thread, enabled: true);
        try
        {
            if (kind == OperationKind.Yield)
            {
                CoyoteSchedulingPoint.Yield();
            }
            else
            {
                CoyoteSchedulingPoint.Interleave();
            }
        }
        catch (ThreadInterruptedException)
        {
            throw iteration.Interrupted(thread);
        }

        iteration.Resumed(thread);
    }

    /// <inheritdoc/>
    public void OnEvent(in ProtocolEvent protocolEvent)
    {
        // Only the running controlled thread records; Coyote never sees events (they are not scheduling points).
        if (t_suppress == 0 && t_current is { } thread)
        {
            thread.Iteration.Marked(thread, protocolEvent);
        }
    }

    /// <inheritdoc/>
    public bool WaitUntil(OperationKind kind, Func<object?, bool> condition, object? state, string file, int line)
    {
        if (t_suppress > 0)
        {
            return false;
        }

        var thread = t_current;
        if (thread is null)
        {
            ReportIfUncontrolled(kind, file, line);
            return false;
        }

        var iteration = thread.Iteration;
        iteration.ThrowIfEnded();
        if (Evaluate(condition, state))
        {
            return true;
        }

        thread.SetPending(kind, file, line);
        iteration.HandOff(thread, enabled: false);
        try
        {
            // Coyote evaluates the condition at each of its decisions, on whichever thread decides.
            Operation.PauseUntil(() => Evaluate(condition, state));
        }
        catch (ThreadInterruptedException)
        {
            throw iteration.Interrupted(thread);
        }

        iteration.ThrowIfEnded();
        iteration.Resumed(thread);
        return true;
    }

    // ---- IExternalScheduler ----

    /// <inheritdoc/>
    public IExternalThread StartThread(Action body, string? name, string file, int line)
    {
        var creator = Current();
        var iteration = creator.Iteration;
        iteration.ThrowIfEnded();
        var thread = iteration.NewThread(body, name ?? $"thread{iteration.Threads.Count}", file, line);
        thread.OperationId = Operation.CreateFrom(new OperationBuilder(thread.Describe()))
            ?? throw new InvalidOperationException("Coyote's testing engine is not attached to this thread.");
        var osThread = new Thread(() => RunThread(thread)) { IsBackground = true, Name = $"coyote-{iteration.Number}-T{thread.Id}" };
        thread.OsThread = osThread;
        Operation.Start(thread.OperationId);
        osThread.Start();

        // The creator's scheduling point, where the built-in scheduler takes it too: Coyote may run the new thread now.
        OnSchedulingPoint(OperationKind.ThreadStart, file, line);
        return thread;
    }

    /// <inheritdoc/>
    public int NextInteger(int maxValue, DecisionKind kind, string file, int line)
    {
        var thread = Current();
        thread.Iteration.ThrowIfEnded();
        var generator = Microsoft.Coyote.Random.Generator.Create();
        var value = kind == DecisionKind.Boolean ? (generator.NextBoolean() ? 1 : 0) : generator.NextInteger(maxValue);
        thread.Iteration.Chose(thread, kind, value, maxValue, file, line);
        return value;
    }

    /// <inheritdoc/>
    [DoesNotReturn]
    public void Fail(string message, string? category)
    {
        var thread = Current();
        var iteration = thread.Iteration;
        iteration.ThrowIfEnded();
        iteration.RecordBug(BugKind.Assertion, $"Assertion failed in {thread.Describe()}: {message}", null, category);
        throw iteration.ReportToCoyote();
    }

    /// <summary>Joins <paramref name="thread"/>: a scheduling point, then a wait Coyote controls.</summary>
    public static void Join(CoyoteThread thread, string file, int line)
    {
        var current = Current();
        if (!ReferenceEquals(current.Iteration, thread.Iteration))
        {
            throw new InvalidOperationException("A controlled thread can only be joined from its own iteration.");
        }

        Instance.OnSchedulingPoint(OperationKind.ThreadJoin, file, line);
        Instance.WaitUntil(OperationKind.ThreadJoin, static s => ((CoyoteThread)s!).IsCompleted, thread, file, line);
    }

    // ---- the iteration's threads ----

    /// <summary>
    /// Runs one iteration of <paramref name="body"/> as Coyote's test method: thread 0 is the thread Coyote gives it.
    /// Like the built-in scheduler, the iteration lasts until every thread has completed.
    /// </summary>
    public static void RunBody(CoyoteIteration iteration, Action body)
    {
        var main = iteration.Main;
        t_current = main;
        Register(iteration);
        try
        {
            iteration.Resumed(main);
            Guard(main, () =>
            {
                body();
                main.MarkCompleted();
                if (!iteration.OthersCompleted())
                {
                    main.SetPending(OperationKind.ThreadEnd, "", 0);
                    iteration.HandOff(main, enabled: false);
                    Operation.PauseUntil(iteration.OthersCompleted);
                }

                // An uncontrolled operation seen after the last controlled point still fails the iteration.
                iteration.FailIfUncontrolled();
            });

            main.MarkCompleted();
            if (iteration.Ended)
            {
                iteration.UnwindOthers();
            }
        }
        finally
        {
            t_current = null;
            Unregister(iteration);
            iteration.Exited(main);
            iteration.Finish();
        }
    }

    private static void RunThread(CoyoteThread thread)
    {
        var iteration = thread.Iteration;
        t_current = thread;
        try
        {
            Guard(thread, () =>
            {
                Operation.OnStarted(thread.OperationId);
                iteration.ThrowIfEnded();
                iteration.Resumed(thread);
                thread.Body!();
            });

            thread.MarkCompleted();
            if (!iteration.Ended)
            {
                thread.SetPending(OperationKind.ThreadEnd, "", 0);
                iteration.HandOff(thread, enabled: false);
                Guard(thread, static () =>
                {
                    Operation.OnCompleted();
                    Operation.ScheduleNext();
                });
            }
        }
        finally
        {
            t_current = null;
            iteration.Exited(thread);
        }
    }

    /// <summary>
    /// Runs part of a controlled thread's life: the iteration's end unwinds it quietly (after the thread that was running
    /// when Coyote interrupted it), and any other exception is the iteration's bug.
    /// </summary>
    private static void Guard(CoyoteThread thread, Action part)
    {
        try
        {
            part();
        }
        catch (ExecutionCanceledException)
        {
        }
        catch (ThreadInterruptedException)
        {
            thread.Iteration.Interrupted(thread);
        }
        catch (Exception e)
        {
            ReportException(thread, e);
        }
    }

    private static void ReportException(CoyoteThread thread, Exception e)
    {
        var iteration = thread.Iteration;
        if (iteration.Ended)
        {
            return;
        }

        iteration.RecordBug(BugKind.Exception, $"Unhandled exception in {thread.Describe()}: {e.GetType().FullName}: {e.Message}", e);
        iteration.ReportToCoyote();
    }

    private static CoyoteThread Current() => t_current
        ?? throw new InvalidOperationException("The calling thread is not controlled by the Coyote backend.");

    private static bool Evaluate(Func<object?, bool> condition, object? state)
    {
        t_suppress++;
        try
        {
            return condition(state);
        }
        finally
        {
            t_suppress--;
        }
    }

    private static void Register(CoyoteIteration iteration)
    {
        lock (s_activeGate)
        {
            s_active.Add(iteration);
            s_activeCount = s_active.Count;
        }
    }

    private static void Unregister(CoyoteIteration iteration)
    {
        lock (s_activeGate)
        {
            s_active.Remove(iteration);
            s_activeCount = s_active.Count;
        }
    }

    private static void ReportIfUncontrolled(OperationKind kind, string file, int line)
    {
        if (s_activeCount == 0)
        {
            return;
        }

        var message = UncontrolledConcurrencyException.Describe(kind, file, line);
        lock (s_activeGate)
        {
            foreach (var iteration in s_active)
            {
                iteration.SawUncontrolled(message);
            }
        }

        throw new UncontrolledConcurrencyException(message);
    }

    /// <summary>Names a Coyote operation after its thread, so Coyote's own reports (a deadlock) name it too.</summary>
    private sealed class OperationBuilder(string name) : IOperationBuilder
    {
        public string Name { get; } = name;

        public Guid? GroupId => null;

        public Func<int>? HashedStateCallback => null;
    }
}
