using System.Diagnostics;
using Engine.Sync;
using Engine.Systematic.Strategies;

namespace Engine.Systematic.Runtime;

/// <summary>
/// Runs iterations of a test body under a controlled scheduler: exactly one logical thread runs at a time, and
/// control passes only at the scheduling points that <c>Engine.Sync</c> reports through <see cref="RuntimeHook"/>.
/// <para>
/// The baton. The thread that runs holds the baton; at a scheduling point it takes <see cref="_gate"/>, records
/// the operation it is about to perform, asks the strategy for the next thread, records that decision, and if it
/// chose another thread hands the baton over (unpark the other worker, park itself). Every field of the iteration
/// is touched only by the baton holder under the gate, or by the driver (the thread that called
/// <see cref="RunIteration"/>) while no logical thread can run: before the first hand-off, after the end, and while
/// unwinding an aborted iteration one thread at a time. The gate costs one uncontended lock per point; it is what
/// makes the watchdog's verdict ("no step for N seconds") race-free against a thread that wakes up just then.
/// </para>
/// <para>
/// Waiting. A thread that must wait (<c>Wait.Until</c>, a held spinlock, a join) is disabled with its condition.
/// Before each decision the conditions of waiting threads are re-evaluated if any write happened since they were
/// last found false (<see cref="_writeEpoch"/>, counted when a thread reaches the point after a writing operation, so
/// after the write); when no thread is enabled all of them are re-evaluated once more before a deadlock is declared,
/// so a condition over plain fields cannot produce a false deadlock.
/// </para>
/// </summary>
internal sealed class ControlledRuntime : IDisposable
{
    [ThreadStatic]
    private static Operation? t_current;

    [ThreadStatic]
    private static int t_suppress;

    private static readonly object s_activeGate = new();
    private static readonly List<ControlledRuntime> s_active = [];
    private static volatile int s_activeCount;

    private readonly Configuration _configuration;
    private readonly int _lane;
    private readonly object _gate = new();
    private readonly Parker _driver = new();
    private readonly Stack<Worker> _idle = new();
    private readonly List<Worker> _workers = [];
    private readonly List<Operation> _operations = [];
    private readonly List<TraceStep> _trace = [];
    private readonly List<TraceEvent> _events = [];
    private int[] _enabled = new int[8];

    private SchedulingStrategy _strategy = new RandomStrategy();
    private SplitMix64 _fairRandom;
    private Operation? _running;
    private int _steps;
    private long _writeEpoch;
    private volatile bool _aborting;
    private volatile bool _ended;
    private bool _hitStepBound;
    private BugKind? _bugKind;
    private string? _bugMessage;
    private string? _bugCategory;
    private Exception? _bugException;
    private string? _divergence;
    private int _workerSerial;

    public ControlledRuntime(Configuration configuration, int lane)
    {
        _configuration = configuration;
        _lane = lane;
        SchedulingHook.Install(RuntimeHook.Instance);
    }

    /// <summary>The logical thread running on the calling OS thread, or null.</summary>
    public static Operation? Current => t_current;

    /// <summary>True while scheduling points of the calling thread are ignored (condition evaluation).</summary>
    public static bool Suppressed => t_suppress > 0;

    /// <summary>True while some runtime has an iteration in flight.</summary>
    public static bool AnyActive => s_activeCount > 0;

    /// <summary>Number of OS threads this runtime has created so far.</summary>
    public int WorkersCreated => _workers.Count;

    /// <summary>
    /// Runs one iteration of <paramref name="body"/> under <paramref name="strategy"/>. Called by the driver thread;
    /// returns when every logical thread has finished or been unwound.
    /// </summary>
    public IterationResult RunIteration(int iteration, ulong seed, SchedulingStrategy strategy, int stepsEstimate, Action body, bool keepTrace)
    {
        _strategy = strategy;
        if (!strategy.PrepareIteration(iteration, seed, stepsEstimate))
        {
            return new IterationResult { Iteration = iteration, Steps = 0, Exhausted = true, StrategyName = strategy.Name, Seed = seed };
        }

        ResetIteration(seed);
        Operation main;
        lock (_gate)
        {
            main = CreateOperation(body, "main", "", 0);
            _steps++;
            _running = Choose(current: null, currentEnabled: false, yielding: false);
            Debug.Assert(ReferenceEquals(_running, main), "the first decision must run the main thread");
        }

        Register();
        try
        {
            if (_divergence is null)
            {
                main.Worker.Parker.Unpark();
                WaitForEnd();
            }
            else
            {
                _aborting = true;
            }
        }
        finally
        {
            Unregister();
        }

        if (_aborting)
        {
            UnwindAll();
        }

        ReleaseWorkers();
        strategy.OnIterationEnd(_bugKind is not null);
        var keep = keepTrace || _bugKind is not null;
        return new IterationResult
        {
            Iteration = iteration,
            Steps = _steps,
            HitStepBound = _hitStepBound,
            BugKind = _bugKind,
            BugMessage = _bugMessage,
            BugCategory = _bugCategory,
            BugException = _bugException,
            Divergence = _divergence,
            Trace = keep ? _trace.ToArray() : null,
            Events = keep ? _events.ToArray() : null,
            ThreadNames = _operations.Select(o => o.Name).ToArray(),
            StrategyName = strategy.Name,
            Seed = seed,
        };
    }

    // ---- called on controlled threads (through RuntimeHook and the API) ----

    /// <summary>
    /// A protocol event marked by the baton holder: recorded after the schedule's latest decision. Not a decision: the
    /// schedule, and so its replay, is the same with or without events.
    /// </summary>
    public void OnEvent(Operation current, in ProtocolEvent protocolEvent) => _events.Add(TraceEvent.Of(_trace.Count - 1, current.Id, protocolEvent));

    /// <summary>A scheduling point of the baton holder: record, decide, maybe hand over.</summary>
    public void OnSchedulingPoint(Operation current, OperationKind kind, string file, int line)
    {
        Operation next;
        lock (_gate)
        {
            ThrowIfEnded(current);
            NoteCompleted(current);
            current.SetPending(kind, file, line);
            next = Decide(current, currentEnabled: true, yielding: kind == OperationKind.Yield);
        }

        if (!ReferenceEquals(next, current))
        {
            SwitchTo(current, next);
        }
    }

    /// <summary>Disables <paramref name="current"/> until <paramref name="condition"/> holds; returns once it does.</summary>
    public bool WaitUntil(Operation current, OperationKind kind, Func<object?, bool> condition, object? state, string file, int line)
    {
        Operation next;
        lock (_gate)
        {
            ThrowIfEnded(current);
            NoteCompleted(current);
            if (Evaluate(condition, state))
            {
                return true;
            }

            current.Status = OperationStatus.Waiting;
            current.Condition = condition;
            current.ConditionState = state;
            current.ConditionEpoch = _writeEpoch;
            current.SetPending(kind, file, line);
            next = Decide(current, currentEnabled: false, yielding: false);
        }

        // The decision cannot pick a disabled thread: next is another one, and when this thread runs again its
        // condition was found true at that decision, with nothing run in between.
        SwitchTo(current, next);
        return true;
    }

    /// <summary>Creates a logical thread started by <paramref name="creator"/> and offers a switch to it.</summary>
    public Operation StartThread(Operation creator, Action body, string? name, string file, int line)
    {
        Operation created;
        lock (_gate)
        {
            ThrowIfEnded(creator);
            created = CreateOperation(body, name ?? $"thread{_operations.Count}", file, line);
        }

        OnSchedulingPoint(creator, OperationKind.ThreadStart, file, line);
        return created;
    }

    /// <summary>A data choice in [0, <paramref name="maxValue"/>), made by the strategy and recorded.</summary>
    public int NextInteger(Operation current, int maxValue, DecisionKind kind, string file, int line)
    {
        lock (_gate)
        {
            ThrowIfEnded(current);
            var value = UseFairnessFallback() ? _fairRandom.NextInt(maxValue) : _strategy.NextInteger(maxValue, _trace.Count);
            if ((uint)value >= (uint)Math.Max(maxValue, 1))
            {
                value = 0;
                _divergence ??= $"step {_trace.Count}: the schedule's data choice is out of range [0, {maxValue}).";
            }

            _trace.Add(new TraceStep(_trace.Count, kind, current.Id, value, maxValue, OperationKind.RandomChoice, file, line, current.Id, current.TimesChosen, false));
            _divergence ??= _strategy.Divergence ?? _strategy.CheckStep(_trace.Count - 1, current.Id, OperationKind.RandomChoice, file, line);
            if (_divergence is not null)
            {
                BeginAbort();
                throw new ExecutionCanceledException();
            }

            return value;
        }
    }

    /// <summary>Records a failed assertion of the running thread, of <paramref name="category"/> if it stated one, and ends the iteration.</summary>
    public void ReportAssertionFailure(Operation current, string message, string? category)
    {
        lock (_gate)
        {
            ThrowIfEnded(current);
            RecordBug(BugKind.Assertion, $"Assertion failed in {current.Describe()}: {message}", null, category);
            BeginAbort();
        }

        throw new ExecutionCanceledException();
    }

    /// <summary>Runs a logical thread's body on its worker, then hands the baton on (or back to the driver).</summary>
    public void Execute(Operation operation)
    {
        if (operation.Started)
        {
            return;
        }

        operation.Started = true;
        t_current = operation;
        try
        {
            operation.Body();
        }
        catch (ExecutionCanceledException)
        {
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                if (!_aborting && !operation.Worker.Dead)
                {
                    RecordBug(BugKind.Exception, $"Unhandled exception in {operation.Describe()}: {e.GetType().FullName}: {e.Message}", e);
                    BeginAbort();
                }
            }
        }

        Operation? next = null;
        var wakeDriver = false;
        lock (_gate)
        {
            if (operation.Worker.Dead)
            {
                t_current = null;
                return;
            }

            operation.Status = OperationStatus.Completed;
            if (_aborting)
            {
                wakeDriver = true;
            }
            else
            {
                _writeEpoch++;
                operation.SetPending(OperationKind.ThreadEnd, "", 0);
                if (_operations.TrueForAll(static o => o.Status == OperationStatus.Completed))
                {
                    _ended = true;
                    wakeDriver = true;
                }
                else
                {
                    try
                    {
                        next = Decide(operation, currentEnabled: false, yielding: false);
                    }
                    catch (ExecutionCanceledException)
                    {
                        wakeDriver = true;
                    }
                }
            }
        }

        t_current = null;
        if (next is not null)
        {
            next.Worker.Parker.Unpark();
        }
        else if (wakeDriver)
        {
            _driver.Unpark();
        }
    }

    /// <summary>An <c>Engine.Sync</c> operation by a thread no runtime controls, while tests run: a bug in each.</summary>
    public static void ReportUncontrolled(OperationKind kind, string file, int line)
    {
        var message = UncontrolledConcurrencyException.Describe(kind, file, line);
        ControlledRuntime[] active;
        lock (s_activeGate)
        {
            active = s_active.ToArray();
        }

        foreach (var runtime in active)
        {
            runtime.AbortWith(BugKind.Uncontrolled, message);
        }

        throw new UncontrolledConcurrencyException(message);
    }

    /// <summary>Evaluates a wait condition with the calling thread's scheduling points suppressed.</summary>
    public static bool Evaluate(Func<object?, bool> condition, object? state)
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

    public void Dispose()
    {
        foreach (var worker in _workers)
        {
            worker.Stop();
        }

        _workers.Clear();
        _idle.Clear();
    }

    // ---- internals (baton holder under _gate, or driver while nothing runs) ----

    private void ResetIteration(ulong seed)
    {
        _operations.Clear();
        _trace.Clear();
        _events.Clear();
        _running = null;
        _steps = 0;
        _writeEpoch = 0;
        _aborting = false;
        _ended = false;
        _hitStepBound = false;
        _bugKind = null;
        _bugMessage = null;
        _bugCategory = null;
        _bugException = null;
        _divergence = null;
        _fairRandom = new SplitMix64(seed ^ 0xFA1E5EEDUL);
    }

    private Operation CreateOperation(Action body, string name, string file, int line)
    {
        var worker = _idle.Count > 0 ? _idle.Pop() : NewWorker();
        var operation = new Operation(this, _operations.Count, name, body, worker);
        operation.SetPending(OperationKind.ThreadStart, file, line);
        worker.Assigned = operation;
        _operations.Add(operation);
        _strategy.OnThreadCreated(operation.Id);
        return operation;
    }

    private Worker NewWorker()
    {
        var worker = new Worker(this, $"systematic-{_lane}-{_workerSerial++}");
        _workers.Add(worker);
        return worker;
    }

    /// <summary>
    /// <paramref name="current"/> is at its next scheduling point, so the operation it announced at the previous one
    /// has run: if it may have written, the waiting threads' conditions must be evaluated again at the next decision.
    /// (Counting the announcement instead of the operation would evaluate them before the write, and a waiter woken by
    /// it would stay disabled until the writer's next write.)
    /// </summary>
    private void NoteCompleted(Operation current)
    {
        if (OperationKinds.MayWrite(current.PendingKind))
        {
            _writeEpoch++;
        }
    }

    private void ThrowIfEnded(Operation current)
    {
        if (_aborting || _ended || current.Worker.Dead)
        {
            throw new ExecutionCanceledException();
        }
    }

    /// <summary>Takes one scheduling decision for <paramref name="current"/>; throws to end the iteration.</summary>
    private Operation Decide(Operation current, bool currentEnabled, bool yielding)
    {
        if (_steps >= _configuration.MaxSteps)
        {
            _hitStepBound = true;
            if (_configuration.StepBoundIsBug)
            {
                RecordBug(BugKind.Hang, $"Hang: the iteration reached the step bound ({_configuration.MaxSteps} scheduling decisions) without finishing; last at {current.Describe()} before {current.DescribePending()}.", null);
            }

            BeginAbort();
            throw new ExecutionCanceledException();
        }

        _steps++;
        var next = Choose(current, currentEnabled, yielding);
        if (_divergence is not null || next is null)
        {
            if (next is null)
            {
                RecordBug(BugKind.Deadlock, DescribeDeadlock(), null);
            }

            BeginAbort();
            throw new ExecutionCanceledException();
        }

        _running = next;
        return next;
    }

    private Operation? Choose(Operation? current, bool currentEnabled, bool yielding)
    {
        var count = CollectEnabled(force: false);
        if (count == 0 && _operations.Exists(static o => o.Status == OperationStatus.Waiting))
        {
            count = CollectEnabled(force: true);
        }

        if (count == 0)
        {
            return null;
        }

        var enabled = new ReadOnlySpan<int>(_enabled, 0, count);
        var context = new SchedulingContext(enabled, current?.Id ?? -1, current?.TimesChosen ?? 0, currentEnabled, yielding, _steps);
        var chosen = UseFairnessFallback() ? enabled[_fairRandom.NextInt(count)] : _strategy.NextThread(context);
        if (_strategy.Divergence is { } divergence)
        {
            _divergence ??= divergence;
        }

        if (!context.IsEnabled(chosen))
        {
            _divergence ??= $"step {_trace.Count}: the schedule chose T{chosen}, which is not enabled.";
            return null;
        }

        var next = _operations[chosen];
        _trace.Add(new TraceStep(_trace.Count, DecisionKind.Schedule, next.Id, next.Id, 0, next.PendingKind, next.PendingFile, next.PendingLine,
            current?.Id ?? -1, current?.TimesChosen ?? 0, currentEnabled && !ReferenceEquals(next, current)));
        next.TimesChosen++;
        _divergence ??= _strategy.CheckStep(_trace.Count - 1, next.Id, next.PendingKind, next.PendingFile, next.PendingLine);
        return next;
    }

    private bool UseFairnessFallback() => _steps > _configuration.FairnessThreshold && _strategy.UsesFairnessFallback;

    private int CollectEnabled(bool force)
    {
        if (_enabled.Length < _operations.Count)
        {
            _enabled = new int[_operations.Count * 2];
        }

        var count = 0;
        foreach (var operation in _operations)
        {
            if (operation.Status == OperationStatus.Waiting && (force || operation.ConditionEpoch != _writeEpoch))
            {
                operation.ConditionEpoch = _writeEpoch;
                if (Evaluate(operation.Condition!, operation.ConditionState))
                {
                    operation.Status = OperationStatus.Enabled;
                    operation.Condition = null;
                    operation.ConditionState = null;
                }
            }

            if (operation.Status == OperationStatus.Enabled)
            {
                _enabled[count++] = operation.Id;
            }
        }

        return count;
    }

    private void SwitchTo(Operation current, Operation next)
    {
        next.Worker.Parker.Unpark();
        current.Worker.Parker.Park();
        if (_aborting || current.Worker.Dead)
        {
            throw new ExecutionCanceledException();
        }
    }

    private string DescribeDeadlock()
    {
        var waiting = _operations.Where(o => o.Status == OperationStatus.Waiting)
            .Select(o => $"{o.Describe()} waits in {o.DescribePending()}");
        return $"Deadlock: no thread can run; {string.Join("; ", waiting)}.";
    }

    private void RecordBug(BugKind kind, string message, Exception? exception, string? category = null)
    {
        if (_bugKind is null)
        {
            _bugKind = kind;
            _bugMessage = message;
            _bugCategory = category;
            _bugException = exception;
        }
    }

    private void BeginAbort() => _aborting = true;

    private void AbortWith(BugKind kind, string message)
    {
        lock (_gate)
        {
            if (_ended || _aborting)
            {
                return;
            }

            RecordBug(kind, message, null);
            BeginAbort();
        }

        _driver.Unpark();
    }

    /// <summary>Driver: waits until the iteration ends, running the watchdog meanwhile.</summary>
    private void WaitForEnd()
    {
        var timeout = (int)Math.Clamp(_configuration.WatchdogTimeout.TotalMilliseconds, 1, int.MaxValue);
        var lastSteps = -1;
        Operation? lastRunning = null;
        while (true)
        {
            var woke = _driver.Park(timeout);
            lock (_gate)
            {
                if (_ended || (_aborting && RunningHasStopped()))
                {
                    return;
                }

                if (!woke && _steps == lastSteps && ReferenceEquals(_running, lastRunning))
                {
                    // No decision for a whole watchdog period: the baton holder is blocked or spinning outside
                    // Engine.Sync. Give up on its OS thread (it is never reused) and unwind the others.
                    var stuck = _running!;
                    RecordBug(BugKind.Uncontrolled,
                        $"Watchdog: {stuck.Describe()} made no scheduling decision for {_configuration.WatchdogTimeout.TotalSeconds:0.###} s " +
                        $"after it was scheduled to perform {stuck.DescribePending()}. It is blocked or spinning outside Engine.Sync " +
                        "(Task.Wait, a lock statement, Thread.Sleep, a spin on a plain field, ...), which the tester cannot see or control.",
                        null);
                    stuck.Worker.Dead = true;
                    stuck.Status = OperationStatus.Completed;
                    BeginAbort();
                    return;
                }

                lastSteps = _steps;
                lastRunning = _running;
            }
        }
    }

    private bool RunningHasStopped() => _running is null || _running.Status == OperationStatus.Completed || _running.Worker.Dead;

    /// <summary>Driver, after an abort: unwinds every parked thread, one at a time, so none runs concurrently.</summary>
    private void UnwindAll()
    {
        var timeout = (int)Math.Clamp(_configuration.WatchdogTimeout.TotalMilliseconds, 1, int.MaxValue);
        foreach (var operation in _operations)
        {
            if (operation.Status == OperationStatus.Completed || operation.Worker.Dead)
            {
                continue;
            }

            if (!operation.Started)
            {
                operation.Status = OperationStatus.Completed;
                continue;
            }

            operation.Worker.Parker.Unpark();
            while (true)
            {
                var woke = _driver.Park(timeout);
                lock (_gate)
                {
                    if (operation.Status == OperationStatus.Completed)
                    {
                        break;
                    }

                    if (!woke)
                    {
                        // It swallowed the cancellation and blocked somewhere: abandon its thread.
                        operation.Worker.Dead = true;
                        operation.Status = OperationStatus.Completed;
                        break;
                    }
                }
            }
        }
    }

    private void ReleaseWorkers()
    {
        foreach (var operation in _operations)
        {
            var worker = operation.Worker;
            worker.Assigned = null;
            if (!worker.Dead)
            {
                _idle.Push(worker);
            }
            else
            {
                _workers.Remove(worker);
            }
        }
    }

    private void Register()
    {
        lock (s_activeGate)
        {
            s_active.Add(this);
            s_activeCount = s_active.Count;
        }
    }

    private void Unregister()
    {
        lock (s_activeGate)
        {
            s_active.Remove(this);
            s_activeCount = s_active.Count;
        }
    }
}
